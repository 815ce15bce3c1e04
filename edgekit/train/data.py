"""Training data: an ImageFolder tree split deterministically into train/validation, or CIFAR-10.

Images are decoded and preprocessed once into memory (float32 NCHW, normalised as the model and
its artifact expect); augmentation then works on tensors. Augmentation randomness is a function of
(seed, epoch, sample index) only, so a run gives the same batches whatever the number of processes
or loader workers, and a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.data.folders import ImageSet, check_decoded_size, find_images, split_per_class
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import EdgekitError
from edgekit.progress import progress

CIFAR10 = "cifar10"
# Decoded float32 images above this size would not fit comfortably in one process per rank.

@dataclass(frozen=True)
class Augmentation:
    """The papers' CIFAR recipe: RandomCrop(size, padding) + horizontal flip; padding 0 = no crop."""

    padding: int = 4
    hflip: bool = True

    @classmethod
    def cifar_style(cls, input_size: int) -> Augmentation:
        return cls(padding=max(1, round(4 * input_size / 32)), hflip=True)

    @property
    def enabled(self) -> bool:
        return self.padding > 0 or self.hflip


class TensorImages:
    """A map-style dataset over preprocessed images with deterministic per-sample augmentation."""

    def __init__(self, images, labels, *, augmentation: Augmentation | None, fill: tuple[float, ...], seed: int):
        import torch

        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.augmentation = augmentation if augmentation and augmentation.enabled else None
        # Padding happens after normalisation, so pad with what a black pixel normalises to
        # (torchvision's RandomCrop pads the raw image with zeros).
        self.fill = torch.tensor(fill, dtype=self.images.dtype)[:, None, None]
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.augmentation is not None:
            image = self._augment(image, np.random.default_rng((self.seed, self.epoch, index)))
        return image, self.labels[index]

    def _augment(self, image, rng):
        pad = self.augmentation.padding
        if pad:
            channels, height, width = image.shape
            canvas = self.fill.expand(channels, height + 2 * pad, width + 2 * pad).clone()
            canvas[:, pad:pad + height, pad:pad + width] = image
            top, left = rng.integers(0, 2 * pad + 1, size=2)
            image = canvas[:, top:top + height, left:left + width]
        if self.augmentation.hflip and rng.random() < 0.5:
            image = image.flip(-1)
        return image.contiguous()


@dataclass
class TrainingData:
    train: TensorImages
    val: TensorImages
    classes: list[str]
    fingerprint: dict = field(default_factory=dict)  # compared on --resume


def _decode(images: ImageSet, preprocessing: Preprocessing, what: str, verbose: bool) -> np.ndarray:
    with progress(f"decoding {what}", len(images), enabled=verbose) as advance:
        return images.load(preprocessing, progress=advance)


def _folder_sets(root: str, val_dir: str | None, val_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    images = find_images(root, purpose="training data")
    if images.labels is None:
        raise EdgekitError(f"training data {root} must be an ImageFolder tree: one sub-folder per class")
    if val_dir is None:
        return split_per_class(images, val_fraction=val_fraction, seed=seed)
    val = find_images(val_dir, purpose="validation data")
    if val.labels is None or val.classes != images.classes:
        raise EdgekitError(f"validation data {val_dir} must have the same class folders as {root}")
    return images, val


def _cifar10_arrays(root: Path, *, download: bool):
    """CIFAR-10's training set through torchvision (users with internet pass --download)."""
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    try:
        dataset = TorchvisionCIFAR10(str(root), train=True, download=download)
    except RuntimeError as error:
        raise EdgekitError(
            f"CIFAR-10 is not in {root} ({error}); pass --download to fetch it, or --data DIR for an ImageFolder copy"
        ) from error
    return dataset.data, list(dataset.targets), list(dataset.classes)


def load_training_data(source: str, preprocessing: Preprocessing, *, val_fraction: float, seed: int,
                       val_dir: str | None = None, subset: int | None = None, augment: bool = True,
                       download: bool = False, cifar_root: Path | None = None,
                       verbose: bool = True) -> TrainingData:
    fill = tuple(-m / s for m, s in zip(preprocessing.mean, preprocessing.std))
    augmentation = Augmentation.cifar_style(preprocessing.input_size[0]) if augment else None
    if source == CIFAR10:
        train_x, train_y, val_x, val_y, classes = _cifar10_split(preprocessing, val_fraction=val_fraction, seed=seed,
                                                                 subset=subset, download=download,
                                                                 root=cifar_root, verbose=verbose)
    else:
        train_set, val_set = _folder_sets(source, val_dir, val_fraction, seed)
        train_set = train_set.subset(subset, seed=seed)
        check_decoded_size(len(train_set) + len(val_set), preprocessing, str(source))
        train_x = _decode(train_set, preprocessing, f"{len(train_set)} training images", verbose)
        val_x = _decode(val_set, preprocessing, f"{len(val_set)} validation images", verbose)
        train_y, val_y, classes = train_set.labels, val_set.labels, train_set.classes
    fingerprint = {"source": str(source), "val_data": val_dir, "val_fraction": val_fraction, "subset": subset,
                   "train_images": len(train_y), "val_images": len(val_y), "classes": classes,
                   "preprocessing": preprocessing.to_dict()}
    return TrainingData(
        train=TensorImages(train_x, train_y, augmentation=augmentation, fill=fill, seed=seed),
        val=TensorImages(val_x, val_y, augmentation=None, fill=fill, seed=seed),
        classes=classes, fingerprint=fingerprint,
    )


def _cifar10_split(preprocessing: Preprocessing, *, val_fraction: float, seed: int, subset: int | None,
                   download: bool, root: Path | None, verbose: bool):
    from PIL import Image

    root = root or Path.home() / ".cache" / "edgekit" / "cifar10"
    pixels, labels, classes = _cifar10_arrays(root, download=download)
    # Reuse the folder split (stratified, seeded) on placeholder paths: the same code decides both.
    index_set = ImageSet(root, [Path(str(i)) for i in range(len(labels))], labels, classes)
    train_set, val_set = split_per_class(index_set, val_fraction=val_fraction, seed=seed)
    train_set = train_set.subset(subset, seed=seed)
    check_decoded_size(len(train_set) + len(val_set), preprocessing, "CIFAR-10")

    def decode(part: ImageSet, what: str) -> np.ndarray:
        with progress(f"preprocessing {what}", len(part), enabled=verbose) as advance:
            rows = []
            for path in part.files:
                rows.append(preprocessing.apply(Image.fromarray(pixels[int(path.name)])))
                advance()
        return np.stack(rows)

    return (decode(train_set, "CIFAR-10 training images"), train_set.labels,
            decode(val_set, "CIFAR-10 validation images"), val_set.labels, classes)
