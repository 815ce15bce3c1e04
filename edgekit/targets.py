"""Target profiles are data: TOML files in the project's ``targets/`` folder (or a user's file)."""

from __future__ import annotations

import platform
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError

BUILTIN_DIR = Path(__file__).resolve().parent / "targets_data"
RUNTIMES = ("onnxruntime", "openvino")
ARCH_ALIASES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


@dataclass(frozen=True)
class QuantizationSettings:
    backend: str
    format: str
    activation_type: str = "uint8"
    weight_type: str = "int8"
    per_channel: bool = True
    reduce_range: bool = False
    calibration_method: str = "minmax"
    preset: str = "performance"

    def to_dict(self) -> dict:
        if self.backend == "nncf":
            return {"backend": self.backend, "format": self.format, "preset": self.preset}
        return {k: getattr(self, k) for k in ("backend", "format", "activation_type", "weight_type",
                                               "per_channel", "reduce_range", "calibration_method")}


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    arch: str
    runtime: str
    threads: int
    quantization: QuantizationSettings
    inference_precision: str | None = None
    int8_dot_product: bool | None = None
    rationale: dict = field(default_factory=dict)
    source: str = ""

    @property
    def runs_on_this_host(self) -> bool:
        return ARCH_ALIASES.get(platform.machine().lower()) == self.arch

    def to_dict(self) -> dict:
        return {
            "name": self.name, "description": self.description, "arch": self.arch,
            "runtime": self.runtime, "threads": self.threads,
            "inference_precision": self.inference_precision, "int8_dot_product": self.int8_dot_product,
            "quantization": self.quantization.to_dict(), "rationale": dict(self.rationale),
        }


def list_targets() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_target(name_or_path: str) -> Target:
    """A built-in target by name, or a user's profile given as a path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = BUILTIN_DIR / f"{name_or_path}.toml"
        if not path.is_file():
            raise EdgekitError(f"unknown target {name_or_path!r}; known targets: {', '.join(list_targets())}")
    elif not path.is_file():
        raise EdgekitError(f"target profile {path} does not exist")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise EdgekitError(f"target profile {path} is not valid TOML") from error
    return _parse(data, source=str(path))


def _parse(data: dict, *, source: str) -> Target:
    try:
        quant = QuantizationSettings(**data.pop("quantization"))
        target = Target(quantization=quant, rationale=data.pop("rationale", {}), source=source, **data)
    except (KeyError, TypeError) as error:
        raise EdgekitError(f"target profile {source} is malformed: {error}") from error
    if target.runtime not in RUNTIMES:
        raise EdgekitError(f"target profile {source}: runtime must be one of {RUNTIMES}, got {target.runtime!r}")
    if target.arch not in ARCH_ALIASES.values():
        raise EdgekitError(f"target profile {source}: arch must be x86_64 or aarch64, got {target.arch!r}")
    if quant.backend not in ("onnxruntime", "nncf"):
        raise EdgekitError(f"target profile {source}: quantization.backend must be onnxruntime or nncf")
    return target
