"""How an image file becomes the model's input tensor. Recorded verbatim in every manifest."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgekit.core.checks import is_integer, is_number

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
# Pillow's 16-bit grayscale modes; ``convert("L")`` would clip every value above 255 to white.
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class UnsupportedImage(ValueError):
    """A decodable image whose pixel format edgekit will not guess at (the message says why)."""


def sobel_edges(gray: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of a [0, 1] image, scaled to [0, 1] (4 is its largest value)."""
    padded = np.pad(gray, 1, mode="edge")
    gx = (padded[:-2, 2:] + 2 * padded[1:-1, 2:] + padded[2:, 2:]) - (padded[:-2, :-2] + 2 * padded[1:-1, :-2] + padded[2:, :-2])
    gy = (padded[2:, :-2] + 2 * padded[2:, 1:-1] + padded[2:, 2:]) - (padded[:-2, :-2] + 2 * padded[:-2, 1:-1] + padded[:-2, 2:])
    return (np.hypot(gx, gy) / (4 * np.sqrt(2))).astype(np.float32)


DERIVED_CHANNELS = {"edges": sobel_edges}


def _sixteen_bit_as_float(image):
    """A 16-bit (or 16-bit-valued 32-bit int) grayscale image -> mode F scaled to [0, 1]."""
    from PIL import Image

    values = np.asarray(image if image.mode == "I" else image.convert("I"))
    if image.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
        # Mode I holds 16-bit PNGs on some Pillow versions; anything outside 0..65535 has no known scale.
        raise UnsupportedImage(
            f"unsupported pixel range {int(values.min())}..{int(values.max())} for a 32-bit integer image "
            "(expected 16-bit values 0..65535)"
        )
    return Image.fromarray((values.astype(np.float32) / 65535.0).astype(np.float32), mode="F")


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

    8-bit images are scaled by 1/255; 16-bit grayscale images by 1/65535 (resized as floats).
    Float images (mode F) are refused: their value range is not knowable from the file.
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
        size = self.input_size
        if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(is_integer(v) and v > 0 for v in size)):
            raise ValueError(f"input_size must be two positive integers (height, width), got {size!r}")
        if self.resize is not None and not (is_integer(self.resize) and self.resize > 0):
            raise ValueError(f"resize must be None or a positive integer, got {self.resize!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {list(INTERPOLATIONS)}, got {self.interpolation!r}")
        unknown = set(self.derived) - set(DERIVED_CHANNELS)
        if unknown:
            raise ValueError(f"unknown derived channels {sorted(unknown)}; known: {sorted(DERIVED_CHANNELS)}")
        if len(self.mean) != self.total_channels or len(self.std) != self.total_channels:
            raise ValueError(
                f"mean/std need {self.total_channels} values, got {len(self.mean)} and {len(self.std)}"
            )
        # A nan/inf/zero here would turn every input into nan or inf without any error later on.
        for name, values in (("mean", self.mean), ("std", self.std)):
            if not all(is_number(v) and math.isfinite(v) for v in values):
                raise ValueError(f"{name} values must be finite numbers, got {list(values)!r}")
        if not all(v > 0 for v in self.std):
            raise ValueError(f"std values must be positive, got {list(self.std)!r}")

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
        """The inverse of to_dict; a malformed record is a ValueError naming the field."""
        if not isinstance(record, dict):
            raise ValueError(f"preprocessing record must be a mapping, got {type(record).__name__}")
        for key in ("input_size", "channels", "mean", "std"):
            if key not in record:
                raise ValueError(f"preprocessing record has no '{key}' field")

        def sequence(key: str, default=()) -> tuple:
            value = record.get(key, default)
            if not isinstance(value, (list, tuple)):  # tuple("0.5") would silently become 3 characters
                raise ValueError(f"preprocessing field '{key}' must be a list, got {value!r}")
            return tuple(value)

        def scalar(key: str, default, check, expected: str):
            value = record.get(key, default)
            if not check(value):
                raise ValueError(f"preprocessing field '{key}' must be {expected}, got {value!r}")
            return value

        mean, std = sequence("mean"), sequence("std")
        for key, values in (("mean", mean), ("std", std)):
            if not all(is_number(v) for v in values):
                raise ValueError(f"preprocessing field '{key}' must be a list of numbers, got {list(values)!r}")
        return cls(
            input_size=sequence("input_size"),
            channels=scalar("channels", None, is_integer, "an integer"),
            mean=mean,
            std=std,
            resize=scalar("resize", None, lambda v: v is None or is_integer(v), "null or an integer"),
            interpolation=scalar("interpolation", "bilinear", lambda v: isinstance(v, str), "a string"),
            layout=scalar("layout", "NCHW", lambda v: isinstance(v, str), "a string"),
            derived=sequence("derived"),
        )

    def load(self, path: Path) -> np.ndarray:
        """One image file -> float32 array of shape (channels, H, W).

        Pillow only warns between 1x and 2x MAX_IMAGE_PIXELS; a calibration or evaluation image
        that large is a mistake, so the warning is raised (the caller reports it as an error).
        """
        from PIL import Image

        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return self.apply(image)

    def apply(self, image) -> np.ndarray:
        """One PIL image -> float32 array of shape (channels, H, W)."""
        from PIL import Image

        resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
        wide = image.mode in SIXTEEN_BIT_MODES or image.mode == "I"
        if wide:
            image = _sixteen_bit_as_float(image)  # resized as floats, so no 8-bit rounding either
        elif image.mode == "F":
            raise UnsupportedImage("unsupported pixel mode F (32-bit float): its value range is unknown; "
                                   "save it as an 8- or 16-bit image")
        else:
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
        if wide:
            # Bicubic overshoots on floats; 8-bit resizing clamps to 0..255, so clamp the same way.
            pixels = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)[None, :, :]
            if self.channels == 3:
                pixels = np.repeat(pixels, 3, axis=0)
        else:
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
