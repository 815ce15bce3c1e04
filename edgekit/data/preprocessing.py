"""How an image file becomes the model's input tensor. Recorded verbatim in every manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def sobel_edges(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of a [0, 1] image, scaled to [0, 1] (4 is its largest value)."""
    padded = np.pad(gray, 1, mode="edge")
    gx = (padded[:-2, 2:] + 2 * padded[1:-1, 2:] + padded[2:, 2:]) - (padded[:-2, :-2] + 2 * padded[1:-1, :-2] + padded[2:, :-2])
    gy = (padded[2:, :-2] + 2 * padded[2:, 1:-1] + padded[2:, 2:]) - (padded[:-2, :-2] + 2 * padded[:-2, 1:-1] + padded[:-2, 2:])
    return (np.hypot(gx, gy) / (4 * np.sqrt(2))).astype(np.float32)


DERIVED_CHANNELS = {"edges": sobel_edges}


@dataclass(frozen=True)
class Preprocessing:
    """Decode -> colour mode -> resize (-> centre crop) -> [0, 1] -> (x - mean) / std, NCHW float32.

    ``resize`` is the length of the shorter side before a centre crop to ``input_size``
    (torchvision's ImageNet recipe: 256 then 224). ``None`` resizes straight to ``input_size``,
    which is what CIFAR-style 32x32 models and small grayscale sets want.

    ``derived`` appends channels computed from the image itself, after the colour channels (the
    face paper feeds a depth map generated from the RGB image next to it; ``"edges"``, the Sobel
    gradient magnitude of the grayscale image, is the dependency-free stand-in edgekit offers).
    ``mean``/``std`` cover colour and derived channels.
    """

    input_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None
    interpolation: str = "bilinear"
    layout: str = "NCHW"
    derived: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")
        unknown = set(self.derived) - set(DERIVED_CHANNELS)
        if unknown:
            raise ValueError(f"unknown derived channels {sorted(unknown)}; known: {sorted(DERIVED_CHANNELS)}")
        if len(self.mean) != self.total_channels or len(self.std) != self.total_channels:
            raise ValueError(
                f"mean/std need {self.total_channels} values, got {len(self.mean)} and {len(self.std)}"
            )

    @property
    def total_channels(self) -> int:
        return self.channels + len(self.derived)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, self.total_channels, *self.input_size)

    def to_dict(self) -> dict:
        record = asdict(self)
        record["input_size"] = list(self.input_size)
        record["mean"] = list(self.mean)
        record["std"] = list(self.std)
        record["derived"] = list(self.derived)
        record["colour_mode"] = "L" if self.channels == 1 else "RGB"
        record["scale"] = "1/255"
        return record

    @classmethod
    def from_dict(cls, record: dict) -> Preprocessing:
        return cls(
            input_size=tuple(record["input_size"]),
            channels=int(record["channels"]),
            mean=tuple(record["mean"]),
            std=tuple(record["std"]),
            resize=record.get("resize"),
            interpolation=record.get("interpolation", "bilinear"),
            layout=record.get("layout", "NCHW"),
            derived=tuple(record.get("derived", ())),
        )

    def load(self, path: Path) -> np.ndarray:
        """One image file -> float32 array of shape (channels, H, W)."""
        from PIL import Image

        with Image.open(path) as image:
            return self.apply(image)

    def apply(self, image) -> np.ndarray:
        """One PIL image -> float32 array of shape (channels, H, W)."""
        from PIL import Image

        resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
        image = image.convert("L" if self.channels == 1 else "RGB")
        height, width = self.input_size
        if self.resize is None:
            image = image.resize((width, height), resample[self.interpolation])
        else:
            scale = self.resize / min(image.size)
            new_size = (max(width, round(image.size[0] * scale)), max(height, round(image.size[1] * scale)))
            image = image.resize(new_size, resample[self.interpolation])
            left = (image.size[0] - width) // 2
            top = (image.size[1] - height) // 2
            image = image.crop((left, top, left + width, top + height))
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        if pixels.ndim == 2:
            pixels = pixels[None, :, :]
        else:
            pixels = pixels.transpose(2, 0, 1)
        if self.derived:
            gray = pixels.mean(axis=0)
            pixels = np.concatenate([pixels] + [DERIVED_CHANNELS[name](gray)[None] for name in self.derived])
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return np.ascontiguousarray((pixels - mean) / std, dtype=np.float32)
