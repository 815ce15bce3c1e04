"""The ``[quantization]`` table of a target profile, as one dataclass per quantizer.

Each runtime backend (edgekit/backends/) names its settings class; the profile loader checks a
profile's keys against that class's fields: a ``choices`` entry in a field's metadata lists the
values it accepts, a ``bool`` field takes true or false. So a quantizer's settings are declared
once, here beside the code that reads them, not again in the loader.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

CALIBRATION_METHODS = ("minmax", "moving-average", "percentile", "entropy")
INT8_TYPES = ("uint8", "int8")


def _choice(default: str, *choices: str):
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True)
class QuantizationSettings:
    """What every quantizer's settings have: which tool (``backend``) writes which model format."""

    backend: str
    format: str

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.keys()}


@dataclass(frozen=True)
class OrtQuantizationSettings(QuantizationSettings):
    """onnxruntime.quantization.quantize_static: QDQ ONNX."""

    activation_type: str = _choice("uint8", *INT8_TYPES)
    weight_type: str = _choice("int8", *INT8_TYPES)
    per_channel: bool = True
    reduce_range: bool = False
    calibration_method: str = _choice("minmax", *CALIBRATION_METHODS)


@dataclass(frozen=True)
class NncfQuantizationSettings(QuantizationSettings):
    """nncf.quantize on an OpenVINO IR."""

    preset: str = _choice("performance", "performance", "mixed")
