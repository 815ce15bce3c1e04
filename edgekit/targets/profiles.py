"""Target profiles are data: TOML files beside this module (edgekit/targets/*.toml, linked from the project's
top-level ``targets/`` folder) or a user's file."""

from __future__ import annotations

import difflib
import platform
import re
import tomllib
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import NoReturn

from edgekit.backends import backend_class, runtimes
from edgekit.core.errors import EdgekitError
from edgekit.quantize.settings import QuantizationSettings

BUILTIN_DIR = Path(__file__).resolve().parent
RUNTIMES = runtimes()  # edgekit/backends/<runtime>.py
ARCH_ALIASES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


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
    # The CPU whose issue model turns emulated instruction counts into estimated cycles, where the
    # build can time neither here nor on a board (edgekit.runtimes.emulation.a72_cost).
    cost_model: str | None = None
    rationale: dict = field(default_factory=dict)
    source: str = ""

    def backend(self):
        """The runtime backend this target chose (edgekit.backends), bound to it."""
        return backend_class(self.runtime)(self)

    @property
    def runs_on_this_host(self) -> bool:
        return ARCH_ALIASES.get(platform.machine().lower()) == self.arch

    def to_dict(self) -> dict:
        return {
            "name": self.name, "description": self.description, "arch": self.arch,
            "runtime": self.runtime, "threads": self.threads,
            "inference_precision": self.inference_precision, "int8_dot_product": self.int8_dot_product,
            "cost_model": self.cost_model,
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
    "cost_model": _choice("cortex-a72"),
    "rationale": (lambda value: isinstance(value, dict), "a table of strings"),
    "quantization": (lambda value: isinstance(value, dict), "a table"),
}
REQUIRED_TOP_LEVEL = ("name", "arch", "runtime", "threads", "quantization")
REQUIRED_QUANTIZATION = ("backend", "format")


def _setting_rule(setting: Field) -> Rule:
    if "choices" in setting.metadata:
        return _choice(*setting.metadata["choices"])
    return _BOOL if setting.type in (bool, "bool") else _STRING


def quantization_rules() -> dict[str, Rule]:
    """The [quantization] keys of every backend, from their settings dataclasses (edgekit.quantize.settings)."""
    backends = [backend_class(runtime) for runtime in RUNTIMES]
    rules = {"backend": _choice(*(b.quantizer for b in backends)), "format": _choice(*(b.model_format for b in backends))}
    for backend in backends:
        for setting in fields(backend.settings_type):
            rules.setdefault(setting.name, _setting_rule(setting))
    return rules


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
    _check_table(quant, quantization_rules(), REQUIRED_QUANTIZATION, "quantization.", fail)
    for key, text in data.get("rationale", {}).items():
        if not isinstance(text, str):
            fail(f"rationale.{_key(key)} must be a string, got {_show(text)}")
    backend = backend_class(data["runtime"])
    if quant["backend"] != backend.quantizer:
        fail(f"quantization.backend must be {backend.quantizer} for runtime {backend.runtime}, got {quant['backend']!r}")
    if quant["format"] != backend.model_format:
        fail(f"quantization.format must be {backend.model_format} for backend {backend.quantizer}, "
             f"got {quant['format']!r}")
    # Keys another backend reads: given to this one they would do nothing, silently.
    for other in (backend_class(name) for name in RUNTIMES if name != backend.runtime):
        for key in quant:
            if key not in backend.settings_type.keys() and key in other.settings_type.keys():
                fail(f"quantization.{key} applies to the {other.quantizer} backend only, not {backend.quantizer}")
        for key in other.profile_keys:
            if key in data and key not in backend.profile_keys:
                fail(f"{key} applies to the {other.runtime} runtime only, not {backend.runtime}")
    plain = {k: v for k, v in data.items() if k not in ("quantization", "rationale")}
    return Target(quantization=backend.settings_type(**quant), rationale=dict(data.get("rationale", {})),
                  source=source, **{"description": "", **plain})
