"""Finding images on disk: an ImageFolder tree (class sub-folders) or a flat folder.

Files with other extensions (README, .DS_Store, labels.csv) are skipped and counted; a file
with an image extension that does not decode is an error naming the file, because silently
dropping it would change the calibration set without anyone noticing.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import EdgekitError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass
class ImageSet:
    """Image files under ``root``, sorted; ``labels`` are class indices when the tree has classes."""

    root: Path
    files: list[Path]
    labels: list[int] | None = None
    classes: list[str] = field(default_factory=list)
    skipped_non_images: int = 0

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, size: int | None, *, seed: int = 0) -> ImageSet:
        """A deterministic sample of ``size`` files (all when size is None or >= len)."""
        if size is None or size >= len(self.files):
            return self
        if size <= 0:
            raise EdgekitError(f"subset size must be positive, got {size}")
        picked = sorted(random.Random(seed).sample(range(len(self.files)), size))
        labels = [self.labels[i] for i in picked] if self.labels is not None else None
        return ImageSet(self.root, [self.files[i] for i in picked], labels, self.classes, self.skipped_non_images)

    def content_sha256(self) -> str:
        """Hash of relative paths and bytes: two calibration sets hash equal only if identical."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.relative_to(self.root).as_posix().encode())
            digest.update(b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()

    def load(self, preprocessing: Preprocessing, progress=None) -> np.ndarray:
        """All images as one float32 array (N, C, H, W)."""
        arrays = []
        for path in self.files:
            try:
                arrays.append(preprocessing.load(path))
            except (OSError, ValueError) as error:
                raise EdgekitError(f"cannot read image {path}: not a valid image file") from error
            if progress is not None:
                progress()
        return np.stack(arrays)


def split_per_class(images: ImageSet, *, val_fraction: float, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Deterministic stratified train/validation split of a labelled set (at least 1 val image per class)."""
    if images.labels is None:
        raise EdgekitError(f"{images.root} must be an ImageFolder tree (class sub-folders) to split it by class")
    if not 0 < val_fraction < 1:
        raise EdgekitError(f"validation fraction must be between 0 and 1, got {val_fraction}")
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted(set(images.labels)):
        members = [i for i, y in enumerate(images.labels) if y == label]
        rng.shuffle(members)
        n_val = max(1, round(len(members) * val_fraction))
        val += members[:n_val]
        train += members[n_val:]

    def pick(indices: list[int]) -> ImageSet:
        indices = sorted(indices)
        return ImageSet(images.root, [images.files[i] for i in indices], [images.labels[i] for i in indices],
                        images.classes, images.skipped_non_images)

    return pick(train), pick(val)


def find_images(directory: str | Path, *, purpose: str = "calibration") -> ImageSet:
    """Every image under ``directory`` (recursively), labelled if it is an ImageFolder tree."""
    root = Path(directory)
    if not root.exists():
        raise EdgekitError(f"{purpose} folder {root} does not exist")
    if not root.is_dir():
        raise EdgekitError(f"{purpose} path {root} is not a folder")
    files, skipped = [], 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name.startswith("."):
            skipped += 1
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            files.append(path)
        else:
            skipped += 1
    if not files:
        extra = f" ({skipped} non-image files ignored)" if skipped else ""
        raise EdgekitError(
            f"{purpose} folder {root} has no images{extra}; expected "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} files, flat or in class sub-folders"
        )
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    labels = None
    if classes and all(len(p.relative_to(root).parts) > 1 for p in files):
        index = {name: i for i, name in enumerate(classes)}
        labels = [index[p.relative_to(root).parts[0]] for p in files]
    return ImageSet(root, files, labels, classes, skipped)


def labelled_images(directory: str | Path) -> ImageSet:
    """An ImageFolder tree for accuracy: class sub-folders in sorted order are the label indices."""
    images = find_images(directory, purpose="evaluation data")
    if images.labels is None:
        raise EdgekitError(
            f"evaluation data {directory} must be an ImageFolder tree (one sub-folder per class), "
            "with every image inside a class folder"
        )
    return images
