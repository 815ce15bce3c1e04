"""Training data: an ImageFolder tree split deterministically into train/validation, CIFAR-10, or
arrays already in memory (the demo, the search's candidates, the tests).

Images are decoded and preprocessed once into memory (float32 NCHW, normalised as the model and
its artifact expect); augmentation then works on tensors. Augmentation randomness is a function of
(seed, epoch, sample index) only, so a run gives the same batches whatever the number of processes
or loader workers, and a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgekit.core.checks import require_int, require_number
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import is_within
from edgekit.core.progress import progress
from edgekit.data.folders import (
    ImageSet,
    check_decoded_size,
    find_images,
    split_per_class,
)
from edgekit.data.preprocessing import Preprocessing

CIFAR10 = "cifar10"
IN_MEMORY = "arrays"  # the source recorded for data handed over as arrays


@dataclass(frozen=True)
class DataSource:
    """Where ``edgekit train`` reads its images and how it holds some out for validation."""

    source: str  # an ImageFolder tree, or "cifar10"
    preprocessing: Preprocessing
    val_fraction: float = 0.1
    val_data: str | None = None
    subset: int | None = None  # train on a deterministic sample of the training split
    augment: bool = True
    download: bool = False

    def __post_init__(self) -> None:
        require_number("--val-fraction", self.val_fraction, 0, 1, low_open=True, high_open=True)
        require_int("--subset", self.subset, 1, optional=True)
        if self.val_data is not None and self.source != CIFAR10:
            train, val = Path(self.source).resolve(), Path(self.val_data).resolve()
            if is_within(train, val) or is_within(val, train):
                # Validating on training images would report a meaningless accuracy.
                raise EdgekitError(f"--val-data {self.val_data} overlaps --data {self.source}; give a separate folder")

    @property
    def inputs(self) -> dict:
        """The folders a run's outputs must stay clear of."""
        return {"training data": None if self.source == CIFAR10 else self.source, "validation data": self.val_data}

    def load(self, *, seed: int, verbose: bool = True, may_download: bool = True) -> TrainingData:
        """``may_download``: False on all ranks but one, so a job fetches CIFAR-10 once."""
        return load_training_data(self.source, self.preprocessing, val_fraction=self.val_fraction, seed=seed,
                                  val_dir=self.val_data, subset=self.subset, augment=self.augment,
                                  download=self.download and may_download, verbose=verbose)


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


def split_folder(root: str | Path, *, val_fraction: float, seed: int,
                 val_dir: str | None = None) -> tuple[ImageSet, ImageSet]:
    """An ImageFolder tree -> (training, validation) image sets: a stratified seeded split, or ``val_dir``."""
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
        train_set, val_set = split_folder(source, val_fraction=val_fraction, seed=seed, val_dir=val_dir)
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


def in_memory_data(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray], *,
                   preprocessing: Preprocessing, classes: list[str] | None = None, augment: bool = False,
                   seed: int = 0) -> TrainingData:
    """Images already preprocessed (float32 NCHW, normalised by ``preprocessing``) and their labels."""
    (train_x, train_y), (val_x, val_y) = train, val
    for name, images, labels in (("training", train_x, train_y), ("validation", val_x, val_y)):
        if np.ndim(images) != 4 or len(images) != len(labels):
            raise EdgekitError(f"{name} arrays must be N images (N, C, H, W) and N labels, "
                               f"got shapes {np.shape(images)} and {np.shape(labels)}")
    if classes is None:
        classes = [str(i) for i in range(int(max(np.max(train_y), np.max(val_y, initial=0))) + 1)]
    fill = tuple(-m / s for m, s in zip(preprocessing.mean, preprocessing.std))
    augmentation = Augmentation.cifar_style(preprocessing.input_size[0]) if augment else None
    fingerprint = {"source": IN_MEMORY, "train_images": len(train_y), "val_images": len(val_y),
                   "classes": list(classes), "preprocessing": preprocessing.to_dict()}
    return TrainingData(
        train=TensorImages(train_x, train_y, augmentation=augmentation, fill=fill, seed=seed),
        val=TensorImages(val_x, val_y, augmentation=None, fill=fill, seed=seed),
        classes=list(classes), fingerprint=fingerprint,
    )


def save_arrays(data: TrainingData, path: Path) -> Path:
    """In-memory training data -> one .npz (how the search hands its split to worker processes)."""
    meta = {"classes": data.classes, "preprocessing": data.fingerprint["preprocessing"]}
    np.savez(path, x_train=data.train.images.numpy(), y_train=data.train.labels.numpy(),
             x_val=data.val.images.numpy(), y_val=data.val.labels.numpy(), meta=json.dumps(meta))
    return path


def load_arrays(path: str | Path, *, augment: bool = False, seed: int = 0) -> TrainingData:
    """The inverse of :func:`save_arrays`."""
    with np.load(path, allow_pickle=False) as arrays:
        meta = json.loads(str(arrays["meta"]))
        return in_memory_data((arrays["x_train"], arrays["y_train"]), (arrays["x_val"], arrays["y_val"]),
                              preprocessing=Preprocessing.from_dict(meta["preprocessing"]), classes=meta["classes"],
                              augment=augment, seed=seed)


def standardise(train_x: np.ndarray, val_x: np.ndarray,
                preprocessing: Preprocessing) -> tuple[np.ndarray, np.ndarray, Preprocessing]:
    """Normalise both splits by the per-channel mean and std of the training split alone.

    ``train_x``/``val_x`` were decoded with ``preprocessing`` (mean 0, std 1); the returned
    preprocessing carries the statistics, so the checkpoint's artifact normalises the same way.
    """
    mean = train_x.mean(axis=(0, 2, 3))
    std = train_x.std(axis=(0, 2, 3)) + 1e-6
    fitted = replace(preprocessing, mean=tuple(float(m) for m in mean), std=tuple(float(v) for v in std))

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x - mean[None, :, None, None]) / std[None, :, None, None]).astype(np.float32)

    return scale(train_x), scale(val_x), fitted


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
