import math

import numpy as np
import pytest
from PIL import Image

from edgekit.core.errors import EdgekitError
from edgekit.data import ImageSet, Preprocessing
from edgekit.data.preprocessing import UnsupportedImage

RAW_GRAY = Preprocessing(input_size=(4, 256), channels=1, mean=(0.0,), std=(1.0,))  # no normalisation


def _gradient16() -> np.ndarray:
    return np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))


# --- 16-bit images ---------------------------------------------------------------------------------

def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    Image.fromarray(_gradient16()).save(tmp_path / "ramp.png")
    assert Image.open(tmp_path / "ramp.png").mode.startswith("I")
    array = RAW_GRAY.load(tmp_path / "ramp.png")
    assert array.max() == pytest.approx(1.0) and array.min() == 0.0
    assert array.mean() == pytest.approx(0.5, abs=1e-3)  # clipped to white it would be ~1.0
    assert len(np.unique(array)) == 256
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(tmp_path / "mid.png")
    assert RAW_GRAY.load(tmp_path / "mid.png") == pytest.approx(0.5, abs=1e-4)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_16_bit_images_resize_as_floats_and_fill_rgb(tmp_path, interpolation):
    Image.fromarray(_gradient16()).save(tmp_path / "ramp.png")
    rgb = Preprocessing(input_size=(8, 8), channels=3, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation=interpolation)
    array = rgb.load(tmp_path / "ramp.png")
    assert array.shape == (3, 8, 8) and array.dtype == np.float32
    assert (array[0] == array[1]).all() and (array[0] == array[2]).all()
    assert -1.0 <= array.min() < -0.8 and 0.8 < array.max() <= 1.0  # the whole ramp, clamped to [0, 1]
    cropped = Preprocessing(input_size=(4, 4), channels=1, mean=(0,), std=(1,), resize=4, interpolation=interpolation)
    assert cropped.load(tmp_path / "ramp.png") == pytest.approx(0.5, abs=0.02)  # the centre of the ramp
    edges = Preprocessing(input_size=(8, 8), channels=1, mean=(0, 0), std=(1, 1), derived=("edges",))
    assert edges.load(tmp_path / "ramp.png").shape == (2, 8, 8)


def test_big_endian_16_bit_and_32_bit_int_modes():
    values = _gradient16()
    big = Image.frombytes("I;16B", (256, 4), values.astype(">u2").tobytes())
    as_int = Image.fromarray(values.astype(np.int32))
    assert as_int.mode == "I"
    np.testing.assert_array_equal(RAW_GRAY.apply(big), RAW_GRAY.apply(Image.fromarray(values)))
    np.testing.assert_array_equal(RAW_GRAY.apply(as_int), RAW_GRAY.apply(Image.fromarray(values)))


@pytest.mark.parametrize("bad", [-1, 70000])
def test_32_bit_int_outside_16_bit_range_is_refused(tmp_path, bad):
    values = np.zeros((4, 4), np.int32)
    values[0, 0] = bad
    with pytest.raises(UnsupportedImage, match="unsupported pixel range"):
        RAW_GRAY.apply(Image.fromarray(values))
    Image.fromarray(values).save(tmp_path / "wide.tif")
    with pytest.raises(EdgekitError, match="wide.tif: unsupported pixel range"):
        ImageSet(tmp_path, [tmp_path / "wide.tif"]).load(RAW_GRAY)


def test_float_images_are_refused_naming_file_and_mode(tmp_path):
    Image.fromarray(np.full((4, 4), 0.5, np.float32)).save(tmp_path / "depth.tif")
    with pytest.raises(EdgekitError, match="depth.tif: unsupported pixel mode F") as caught:
        ImageSet(tmp_path, [tmp_path / "depth.tif"]).load(RAW_GRAY)
    assert "\n" not in str(caught.value)


# --- 8-bit images are unchanged --------------------------------------------------------------------

def _reference(image, pre: Preprocessing) -> np.ndarray:
    """The 8-bit pipeline as it was before 16-bit support: outputs must stay bit-identical."""
    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[pre.interpolation]
    image = image.convert("L" if pre.channels == 1 else "RGB")
    h, w = pre.input_size
    if pre.resize is None:
        image = image.resize((w, h), resample)
    else:
        s = pre.resize / min(image.size)
        image = image.resize((max(w, round(image.size[0] * s)), max(h, round(image.size[1] * s))), resample)
        left, top = (image.size[0] - w) // 2, (image.size[1] - h) // 2
        image = image.crop((left, top, left + w, top + h))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    mean = np.asarray(pre.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(pre.std, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((pixels - mean) / std, dtype=np.float32)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "LA", "CMYK", "1"])
@pytest.mark.parametrize("channels,resize,interpolation", [(1, None, "bilinear"), (3, 12, "bicubic"), (3, None, "nearest")])
def test_8_bit_modes_are_bit_identical_to_the_original_pipeline(mode, channels, resize, interpolation):
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)).convert(mode)
    pre = Preprocessing(input_size=(8, 10), channels=channels, mean=(0.4,) * channels, std=(0.3,) * channels,
                        resize=resize, interpolation=interpolation)
    out = pre.apply(image)
    assert out.dtype == np.float32 and out.tobytes() == _reference(image, pre).tobytes()


# --- values must be sane ---------------------------------------------------------------------------

GOOD = dict(input_size=(32, 32), channels=1, mean=(0.5,), std=(0.25,))


@pytest.mark.parametrize("change,message", [
    (dict(mean=(math.nan,)), "mean values must be finite"),
    (dict(mean=(math.inf,)), "mean values must be finite"),
    (dict(std=(math.inf,)), "std values must be finite"),
    (dict(std=(math.nan,)), "std values must be finite"),
    (dict(std=(0.0,)), "std values must be positive"),
    (dict(std=(-1.0,)), "std values must be positive"),
    (dict(mean=("0.5",)), "mean values must be finite numbers"),
    (dict(input_size=(0, 32)), "input_size must be two positive integers"),
    (dict(input_size=(-3, 32)), "input_size must be two positive integers"),
    (dict(input_size=(32,)), "input_size must be two positive integers"),
    (dict(input_size=(32.0, 32)), "input_size must be two positive integers"),
    (dict(input_size=32), "input_size must be two positive integers"),
    (dict(resize=0), "resize must be None or a positive integer"),
    (dict(resize=-256), "resize must be None or a positive integer"),
    (dict(resize=2.5), "resize must be None or a positive integer"),
    (dict(resize="256"), "resize must be None or a positive integer"),
    (dict(interpolation="lanczos"), "interpolation must be one of"),
    (dict(channels=2), "channels must be 1"),
    (dict(mean=(0.5, 0.5)), "mean/std need 1 values"),
])
def test_insane_values_are_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        Preprocessing(**{**GOOD, **change})


def test_to_dict_format_is_unchanged():
    pre = Preprocessing(input_size=(224, 224), channels=3, mean=(0.1, 0.2, 0.3), std=(1, 2, 3), resize=256)
    assert pre.to_dict() == {
        "input_size": [224, 224], "channels": 3, "mean": [0.1, 0.2, 0.3], "std": [1, 2, 3], "resize": 256,
        "interpolation": "bilinear", "layout": "NCHW", "derived": [], "colour_mode": "RGB", "scale": "1/255",
    }
    assert list(pre.to_dict()) == ["input_size", "channels", "mean", "std", "resize", "interpolation", "layout",
                                   "derived", "colour_mode", "scale"]
    assert Preprocessing.from_dict(pre.to_dict()) == pre


def _record(**change):
    record = Preprocessing(**GOOD).to_dict()
    record.update(change)
    return {k: v for k, v in record.items() if v is not _DROP}


_DROP = object()


@pytest.mark.parametrize("record,field", [
    (_record(mean=_DROP), "mean"),
    (_record(input_size=_DROP), "input_size"),
    (_record(channels=_DROP), "channels"),
    (_record(std=_DROP), "std"),
    (_record(mean="0.5"), "mean"),
    (_record(mean=["a"]), "mean"),
    (_record(std=None), "std"),
    (_record(input_size="32x32"), "input_size"),
    (_record(input_size=[0, 32]), "input_size"),
    (_record(channels="1"), "channels"),
    (_record(channels=1.5), "channels"),
    (_record(resize="256"), "resize"),
    (_record(interpolation=3), "interpolation"),
    (_record(derived="edges"), "derived"),
    (_record(std=[float("nan")]), "std"),
    ([1, 2, 3], "mapping"),
    (None, "mapping"),
])
def test_malformed_records_are_value_errors_naming_the_field(record, field):
    with pytest.raises(ValueError, match=field):
        Preprocessing.from_dict(record)


def test_from_dict_ignores_the_informational_keys_and_accepts_old_records():
    record = {"input_size": [16, 16], "channels": 1, "mean": [0.5], "std": [0.5]}  # before resize/derived/...
    assert Preprocessing.from_dict(record) == Preprocessing(input_size=(16, 16), channels=1, mean=(0.5,), std=(0.5,))
