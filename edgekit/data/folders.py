"""Finding images on disk: an ImageFolder tree (class sub-folders) or a flat folder.

Files with other extensions (README, .DS_Store, labels.csv) and hidden entries are skipped and
counted; a file with an image extension that does not decode is an error naming the file, because
silently dropping it would change the calibration set without anyone noticing. For the same
reason a folder that cannot be listed is an error (``Path.rglob`` would skip it quietly).

A tree is labelled when no image sits directly in ``directory`` and it has at least one
(non-hidden) sub-folder. Its classes are then ALL those sub-folders, sorted by name, as in
torchvision's ImageFolder: an empty class folder keeps its index instead of shifting every later
class down by one. Where labels are used (every purpose but calibration) empty classes are an error.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.data.preprocessing import Preprocessing, UnsupportedImage

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".pgm", ".ppm", ".bmp", ".webp", ".tif", ".tiff"})
LABELS_UNUSED = frozenset({"calibration"})
MAX_DECODED_BYTES = 8 * 1024**3  # decoded images one process holds at most  # purposes that only need pixels, not class indices


@dataclass
class ImageSet:
    """Image files under ``root``, sorted; ``labels`` are class indices when the tree has classes."""

    root: Path
    files: list[Path]
    labels: list[int] | None = None
    classes: list[str] = field(default_factory=list)
    skipped_non_images: int = 0
    empty_classes: list[str] = field(default_factory=list)  # class folders with no images (still indexed)

    def __len__(self) -> int:
        return len(self.files)

    def _with(self, indices: list[int]) -> ImageSet:
        labels = [self.labels[i] for i in indices] if self.labels is not None else None
        return ImageSet(self.root, [self.files[i] for i in indices], labels, self.classes,
                        self.skipped_non_images, self.empty_classes)

    def subset(self, size: int | None, *, seed: int = 0) -> ImageSet:
        """A deterministic sample of ``size`` files (all when size is None or >= len)."""
        if size is None or size >= len(self.files):
            return self
        if size <= 0:
            raise EdgekitError(f"subset size must be positive, got {size}")
        return self._with(sorted(random.Random(seed).sample(range(len(self.files)), size)))

    def without(self, excluded: set[str], *, by_content: bool = True) -> ImageSet:
        """These images less those whose resolved path, or (``by_content``) content hash
        (``file_sha256``), is in ``excluded``. Hashing reads every file: sample first."""
        keep = [i for i, path in enumerate(self.files)
                if str(path.resolve()) not in excluded and not (by_content and file_sha256(path) in excluded)]
        return self._with(keep)

    def identities(self) -> set[str]:
        """Resolved paths and content hashes: what ``without`` matches against."""
        return {str(path.resolve()) for path in self.files} | {file_sha256(path) for path in self.files}

    def content_sha256(self) -> str:
        """Hash of relative paths and bytes: two calibration sets hash equal only if identical."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.relative_to(self.root).as_posix().encode())
            digest.update(b"\0")
            try:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
            except OSError as error:
                raise EdgekitError(_read_error(path, error)) from None
        return digest.hexdigest()

    def load(self, preprocessing: Preprocessing, progress=None) -> np.ndarray:
        """All images as one float32 array (N, C, H, W)."""
        from PIL import Image

        check_decoded_size(len(self.files), preprocessing, f"images from {self.root}")
        # Pillow's own decode failures come as any of these; a bug in edgekit's code would not.
        unreadable = (OSError, ValueError, SyntaxError, EOFError, struct.error,
                      Image.DecompressionBombError, Image.DecompressionBombWarning)
        stacked = None  # filled in place: a list of images plus np.stack would hold them twice
        for index, path in enumerate(self.files):
            try:
                image = preprocessing.load(path)
            except unreadable as error:
                raise EdgekitError(_read_error(path, error)) from None
            if stacked is None:
                stacked = np.empty((len(self.files), *image.shape), dtype=image.dtype)
            stacked[index] = image
            if progress is not None:
                progress()
        return stacked if stacked is not None else np.stack([])


def file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise EdgekitError(_read_error(path, error)) from None


def check_decoded_size(count: int, preprocessing: Preprocessing, what: str) -> None:
    """Refuse before decoding what cannot fit: 300 images at a mistyped --input-size 4096 are 60 GB,
    which would end in the kernel's OOM killer instead of a message."""
    import psutil

    needed = count * int(np.prod(preprocessing.input_shape[1:])) * 4
    limit = min(MAX_DECODED_BYTES, int(psutil.virtual_memory().available * 0.8))
    if needed > limit:
        height, width = preprocessing.input_size
        raise EdgekitError(f"{what}: {count} images at {height}x{width} would take {needed / 1024**3:.1f} GiB decoded, "
                           f"more than the {limit / 1024**3:.1f} GiB this process may use; use fewer images "
                           "(--calib-size, --limit, --subset) or a smaller --input-size")


def _read_error(path: Path, error: BaseException) -> str:
    """One line naming ``path`` and what is wrong with it (no chained traceback: it says it all)."""
    from PIL import Image

    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        # Pillow's message: "Image size (N pixels) exceeds limit of M pixels, ..."; M is 2x the
        # setting for the error, but edgekit refuses the warning's 1x too, so name the setting.
        found = re.search(r"\((\d+) pixels\)", str(error))
        pixels = f"{int(found[1])} pixels" if found else str(error)
        return (f"image {path} is too large ({pixels}, over the {Image.MAX_IMAGE_PIXELS}-pixel limit "
                "of PIL.Image.MAX_IMAGE_PIXELS): a decompression bomb or not an image meant for this model")
    if isinstance(error, UnsupportedImage):
        return f"cannot use image {path}: {error}"
    if isinstance(error, FileNotFoundError):
        return f"image {path} no longer exists (removed after the folder was listed, or a broken link)"
    if isinstance(error, IsADirectoryError):
        return f"image path {path} is a folder, not an image file"
    if isinstance(error, PermissionError):
        return f"cannot read image {path}: permission denied"
    return f"cannot read image {path}: not a valid image file"


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
    return images._with(sorted(train)), images._with(sorted(val))


def _list_error(purpose: str, folder: Path):
    def fail(error: OSError) -> None:
        where = error.filename or folder
        raise EdgekitError(f"cannot list {purpose} folder {where}: {error.strerror or error}") from None
    return fail


def _walk(folder: Path, purpose: str) -> tuple[list[Path], int]:
    """Image files under ``folder`` and the number of entries skipped.

    Symlinked image files are kept (the search stage links its training split); symlinked
    folders below ``folder`` are not entered, so a link back up the tree cannot loop.
    """
    files, skipped = [], 0
    for dirpath, dirnames, filenames in os.walk(folder, onerror=_list_error(purpose, folder)):
        hidden = [name for name in dirnames if name.startswith(".")]
        skipped += len(hidden)
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_SUFFIXES:
                skipped += 1
                continue
            path = Path(dirpath) / name
            if not path.is_file():  # a broken link or a fifo would fail later with a vaguer message
                raise EdgekitError(f"image {path} is not a readable file (a broken link?)")
            files.append(path)
    return files, skipped


def _top_level(root: Path, purpose: str) -> tuple[list[str], bool, int]:
    """Non-hidden sub-folder names, whether an image file sits in ``root``, and its other entries."""
    folders, has_images, others = [], False, 0
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    others += 1
                elif entry.is_dir():  # follows a symlinked class folder: it is a class like any other
                    folders.append(entry.name)
                elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                    has_images = True
                else:
                    others += 1
    except OSError as error:
        _list_error(purpose, root)(error)
    return sorted(folders), has_images, others


def class_folder_names(directory: str | Path, *, purpose: str) -> list[str]:
    """The classes of an ImageFolder tree in label order: its non-hidden sub-folders, sorted by name."""
    root = Path(directory)
    if not root.is_dir():
        raise EdgekitError(f"{purpose} {root} is not a folder")
    folders = _top_level(root, purpose)[0]
    if not folders:
        raise EdgekitError(f"{purpose} {root} has no class sub-folders")
    return folders


def find_images(directory: str | Path, *, purpose: str = "calibration") -> ImageSet:
    """Every image under ``directory`` (recursively), labelled if it is an ImageFolder tree."""
    root = Path(directory)
    if not root.exists():
        raise EdgekitError(f"{purpose} folder {root} does not exist")
    if not root.is_dir():
        raise EdgekitError(f"{purpose} path {root} is not a folder")
    folders, top_images, others = _top_level(root, purpose)
    classes = folders if folders and not top_images else []
    if classes:
        # Walked one by one so that a symlinked class folder is entered too.
        files, skipped = [], others
        for name in classes:
            found, count = _walk(root / name, purpose)
            files += found
            skipped += count
    else:
        files, skipped = _walk(root, purpose)
    files.sort()  # Path order (part by part): the order recorded calibration hashes were taken in
    if not files:
        extra = f" ({skipped} non-image files ignored)" if skipped else ""
        raise EdgekitError(
            f"{purpose} folder {root} has no images{extra}; expected "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} files, flat or in class sub-folders"
        )
    labels, empty = None, []
    if classes:
        index = {name: i for i, name in enumerate(classes)}
        labels = [index[p.relative_to(root).parts[0]] for p in files]
        used = set(labels)
        empty = [name for name in classes if index[name] not in used]
        if empty and purpose not in LABELS_UNUSED:
            raise EdgekitError(_empty_classes_error(empty, root))
    return ImageSet(root, files, labels, classes, skipped, empty)


def _empty_classes_error(empty: list[str], root: Path) -> str:
    names = ", ".join(repr(name) for name in empty)
    folder, verb = ("class folders", "have") if len(empty) > 1 else ("class folder", "has")
    return (f"{folder} {names} in {root} {verb} no images; every sub-folder is a class (sorted by name gives "
            "the label index), so remove it or add its images")


def labelled_images(directory: str | Path, *, purpose: str = "evaluation data") -> ImageSet:
    """An ImageFolder tree for accuracy: class sub-folders in sorted order are the label indices."""
    images = find_images(directory, purpose=purpose)
    if images.labels is None:
        raise EdgekitError(
            f"{purpose} {directory} must be an ImageFolder tree (one sub-folder per class), "
            "with every image inside a class folder"
        )
    if images.empty_classes:  # find_images already refuses these for labelled purposes; calibration too here
        raise EdgekitError(_empty_classes_error(images.empty_classes, images.root))
    return images
