"""Declared records: frozen dataclasses whose type hints are the schema, read and checked by msgspec.

A record's JSON is its fields, in declaration order. ``read_as`` turns JSON builtins into a record and
refuses, in one line naming the first field that does not fit, anything its types and
``msgspec.Meta`` constraints do not allow; ``to_dict`` writes it back; ``msgspec.json.schema``
describes it for other readers (docs/manifest.schema.json).

msgspec, not pydantic or cattrs: it reads stdlib dataclasses as they are, and it is the cheapest to
import (about 5 ms on top of the manifest's own imports; see docs/artifact.md).
"""

from __future__ import annotations

import ast
import re
from dataclasses import MISSING, Field, fields
from types import MappingProxyType
from typing import Any, ClassVar, Mapping, TypeVar

import msgspec

T = TypeVar("T")
# msgspec's "<what is wrong> - at `$.models[0].runtime`" (or "- at `key` in `$.files`" for a mapping's key).
_LOCATED = re.compile(r"^(?P<what>.*) - at (?:`key` in )?`\$(?P<path>[^`]*)`$", re.DOTALL)
_MISSING_FIELD = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


class Record:
    """Mixin of a declared record (a frozen dataclass).

    Records are values: a ``dict`` field becomes a read-only mapping and a ``list`` a tuple, so a
    record read from a manifest cannot be changed behind the manifest's back.
    """

    # True: a field at its default (None, (), {}) is left out of the JSON, as the section's writers
    # always did (absent means "does not apply"), except the fields named in ALWAYS_WRITTEN.
    OMIT_DEFAULTS: ClassVar[bool] = False
    ALWAYS_WRITTEN: ClassVar[frozenset[str]] = frozenset()

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, dict):
                object.__setattr__(self, item.name, MappingProxyType(dict(value)))
            elif isinstance(value, list):
                object.__setattr__(self, item.name, tuple(value))

    def to_dict(self) -> dict:
        """The record as JSON builtins (the inverse of ``read_as``)."""
        record = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if self.OMIT_DEFAULTS and item.name not in self.ALWAYS_WRITTEN and _is_default(item, value):
                continue
            record[item.name] = to_builtins(value)
        return record

    @classmethod
    def from_dict(cls: type[T], record: Any) -> T:
        return read_as(cls, record)


def _is_default(item: Field, value) -> bool:
    if item.default is not MISSING:
        return value == item.default
    return item.default_factory is not MISSING and value == item.default_factory()


def to_builtins(value):
    """JSON builtins of a record, mapping or sequence. Records of other rooms (Preprocessing,
    ModelConfig) are written by their own ``to_dict``, which adds or leaves out keys of their own."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: to_builtins(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtins(item) for item in value]
    return value


def read_as(kind: type[T], raw: Any, *, at: str = "") -> T:
    """``raw`` (JSON builtins) as a ``kind``; a ValueError "<field>: <what is wrong>" when it does not fit.

    ``at`` is prefixed to the field's path (the caller's name for where ``raw`` sits).
    """
    try:
        return msgspec.convert(raw, kind)
    except msgspec.ValidationError as error:
        reported = path, what = _path_and_what(str(error))
    while "[...]" in path:  # msgspec does not say which key of a mapping: find it
        named = _name_the_key(kind, raw, path, reported)
        if named is None:
            break
        path = named
    raise ValueError(_line(f"{at}{path}", what))


def _line(path: str, what: str) -> str:
    """The field first, on one line: "models[0].runtime: invalid enum value 'tvm'"."""
    path = path.lstrip(".")
    return f"{path}: {what}" if path else what


def _path_and_what(message: str) -> tuple[str, str]:
    """(".models[0].runtime", "invalid enum value 'tvm'") of msgspec's error message."""
    message = " ".join(message.split())
    match = _LOCATED.match(message)
    what, path = (match["what"], match["path"]) if match else (message, "")
    missing = _MISSING_FIELD.match(what)
    if missing:
        what, path = "required, but missing", f"{path}.{missing['field']}"
    return path, what[:1].lower() + what[1:]


# One step of a path: .name, [index], ['key'] (a key already named) or [...] (one not yet named).
_STEP = re.compile(r"""\.(\w+)|\[(\d+|'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\.\.\.)\]""")


def _name_the_key(kind, raw, path: str, reported: tuple[str, str]) -> str | None:
    """``path`` with its first "[...]" replaced by the key whose value alone fails as ``reported``."""
    try:  # naming the key is a courtesy: where it cannot be done, "[...]" stays
        steps = [name or ast.literal_eval(index) for name, index in _STEP.findall(path[:path.index("[...]")])]
        mapping = _value_at(raw, steps)
    except (LookupError, TypeError, ValueError, SyntaxError):
        return None
    for key in mapping if isinstance(mapping, dict) else ():
        try:
            msgspec.convert(_keeping_only(raw, steps, key), kind)
        except msgspec.ValidationError as error:
            if _path_and_what(str(error)) == reported:
                return path.replace("[...]", f"[{key!r}]", 1)
        except Exception:  # noqa: BLE001 (another record's own check, on this trial copy: not the key sought)
            continue
    return None


def _value_at(raw, steps: list):
    for step in steps:
        raw = raw[step]
    return raw


def _keeping_only(raw, steps: list, key):
    """A copy of ``raw`` whose mapping at ``steps`` holds ``key`` alone (the rest of ``raw`` is shared)."""
    if not steps:
        return {key: raw[key]}
    copy = dict(raw) if isinstance(raw, dict) else list(raw)
    copy[steps[0]] = _keeping_only(raw[steps[0]], steps[1:], key)
    return copy
