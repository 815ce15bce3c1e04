"""Target profiles are data: TOML files beside this module (edgekit/targets/*.toml, linked from the project's
top-level ``targets/`` folder) or a user's file."""

from __future__ import annotations

import difflib
import platform
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from edgekit.core.errors import EdgekitError

BUILTIN_DIR = Path(__file__).resolve().parent
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
    """A built-in target by name, or a user's profile given as a path to a .toml file.

    Every problem with the file is an EdgekitError naming the file and the key, raised before any
    model is touched: a profile is hand-written data, and a typo must not silently change a build.
    """
    try:  # stat() can fail too (a folder on the way without search permission), not only the read
        path = _locate(str(name_or_path))
        raw = path.read_bytes()
    except OSError as error:
        raise EdgekitError(f"target profile {name_or_path} cannot be read") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EdgekitError(f"target profile {path} is not UTF-8 text (byte {raw[error.start]:#04x} at offset "
                           f"{error.start})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise EdgekitError(f"target profile {path} is not valid TOML") from error
    return _parse(data, source=str(path))


def _locate(name_or_path: str) -> Path:
    known = list_targets()
    if name_or_path in known:
        return BUILTIN_DIR / f"{name_or_path}.toml"
    path = Path(name_or_path)
    if path.suffix != ".toml" and not path.exists():
        raise EdgekitError(f"unknown target {name_or_path!r}; known targets: {', '.join(known)}")
    if path.is_dir():
        raise EdgekitError(f"target profile {path} is a directory, not a .toml file")
    if path.suffix != ".toml":
        raise EdgekitError(f"target profile {path} must be a .toml file (known targets: {', '.join(known)})")
    if not path.is_file():
        raise EdgekitError(f"target profile {path} does not exist")
    return path


# The schema, as data: key -> (accepts the TOML value?, what the message says is expected).
Rule = tuple[Callable[[object], bool], str]
THREADS_MAX = 1024  # more than any edge board has cores; a larger number is a typo


def _choice(*options: str) -> Rule:
    return (lambda value: isinstance(value, str) and value in options), "one of " + ", ".join(options)


_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_BOOL: Rule = (lambda value: isinstance(value, bool), "true or false")
_STRING: Rule = (lambda value: isinstance(value, str), "a string")
TOP_LEVEL: dict[str, Rule] = {
    # The name goes into the default artifact folder (artifacts/<model>-<name>): no slashes, no "..".
    "name": (lambda value: isinstance(value, str) and _NAME.fullmatch(value) is not None,
             "letters, digits, '.', '_' or '-' (not starting with '.')"),
    "description": _STRING,
    # Canonical names only: the aliases (amd64, arm64) are for reading a host's platform.machine().
    "arch": _choice(*dict.fromkeys(ARCH_ALIASES.values())),
    "runtime": _choice(*RUNTIMES),
    # type() rather than isinstance(): bool is an int subclass, and `threads = true` is a mistake.
    "threads": (lambda value: type(value) is int and 1 <= value <= THREADS_MAX,
                f"an integer from 1 to {THREADS_MAX}"),
    "inference_precision": _choice("f32", "bf16", "f16"),
    "int8_dot_product": _BOOL,
    "rationale": (lambda value: isinstance(value, dict), "a table of strings"),
    "quantization": (lambda value: isinstance(value, dict), "a table"),
}
QUANTIZATION: dict[str, Rule] = {
    "backend": _choice("onnxruntime", "nncf"),
    "format": _choice("qdq", "openvino-ir"),
    "activation_type": _choice("uint8", "int8"),
    "weight_type": _choice("uint8", "int8"),
    "per_channel": _BOOL,
    "reduce_range": _BOOL,
    "calibration_method": _choice("minmax", "moving-average", "percentile", "entropy"),
    "preset": _choice("performance", "mixed"),
}
REQUIRED_TOP_LEVEL = ("name", "arch", "runtime", "threads", "quantization")
REQUIRED_QUANTIZATION = ("backend", "format")
BACKEND_OF_RUNTIME = {"onnxruntime": "onnxruntime", "openvino": "nncf"}
FORMAT_OF_BACKEND = {"onnxruntime": "qdq", "nncf": "openvino-ir"}
# Keys one backend reads and the other ignores: given to the wrong one they would do nothing, silently.
BACKEND_KEYS = {"onnxruntime": ("activation_type", "weight_type", "per_channel", "reduce_range", "calibration_method"),
                "nncf": ("preset",)}


def _show(value: object) -> str:
    """The value as the user wrote it, on one short line (TOML spells booleans true/false)."""
    text = str(value).lower() if isinstance(value, bool) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _key(key: str) -> str:
    """A TOML key as written: quoted keys may hold spaces or newlines, which would break the one line."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else repr(key)


def _check_table(table: dict, rules: dict[str, Rule], required: tuple[str, ...], prefix: str,
                 fail: Callable[[str], NoReturn]) -> None:
    # Unknown keys first: `thread = 2` is better reported as a typo than as a missing `threads`.
    for key in table:
        if key not in rules:
            close = difflib.get_close_matches(key, rules, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else f"; known keys: {', '.join(rules)}"
            fail(f"unknown key {prefix}{_key(key)}{hint}")
    missing = [prefix + key for key in required if key not in table]
    if missing:
        fail(f"missing required key{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    for key, value in table.items():
        accepts, expected = rules[key]
        if not accepts(value):
            fail(f"{prefix}{key} must be {expected}, got {_show(value)}")


def _parse(data: dict, *, source: str) -> Target:
    def fail(problem: str) -> NoReturn:
        raise EdgekitError(f"target profile {source}: {problem}")

    _check_table(data, TOP_LEVEL, REQUIRED_TOP_LEVEL, "", fail)
    quant = data["quantization"]
    _check_table(quant, QUANTIZATION, REQUIRED_QUANTIZATION, "quantization.", fail)
    for key, text in data.get("rationale", {}).items():
        if not isinstance(text, str):
            fail(f"rationale.{_key(key)} must be a string, got {_show(text)}")
    runtime, backend = data["runtime"], quant["backend"]
    if backend != BACKEND_OF_RUNTIME[runtime]:
        fail(f"quantization.backend must be {BACKEND_OF_RUNTIME[runtime]} for runtime {runtime}, got {backend!r}")
    if quant["format"] != FORMAT_OF_BACKEND[backend]:
        fail(f"quantization.format must be {FORMAT_OF_BACKEND[backend]} for backend {backend}, got {quant['format']!r}")
    for other, keys in BACKEND_KEYS.items():
        for key in keys:
            if other != backend and key in quant:
                fail(f"quantization.{key} applies to the {other} backend only, not {backend}")
    if "inference_precision" in data and runtime != "openvino":
        fail(f"inference_precision applies to the openvino runtime only, not {runtime}")
    fields = {k: v for k, v in data.items() if k not in ("quantization", "rationale")}
    return Target(quantization=QuantizationSettings(**quant), rationale=dict(data.get("rationale", {})),
                  source=source, **{"description": "", **fields})
