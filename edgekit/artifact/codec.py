"""Declared records: frozen dataclasses whose type hints are the schema, read and checked by msgspec.

A record's JSON is its fields, in declaration order. ``read_as`` turns JSON builtins into a record and
refuses, in one line naming the first field that does not fit, anything its types and
``msgspec.Meta`` constraints do not allow; ``to_dict`` writes it back; ``msgspec.json.schema``
describes it for other readers (docs/manifest.schema.json).

msgspec, not pydantic or cattrs: it reads stdlib dataclasses as they are, and it is the cheapest to
import (about 5 ms on top of the manifest's own imports; see docs/artifact.md).
"""

from __future__ import annotations

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
        raise ValueError(located(str(error), at)) from None


def located(message: str, at: str = "") -> str:
    """msgspec's error as "models[0].runtime: invalid enum value 'tvm'": the field first, one line."""
    message = " ".join(message.split())
    match = _LOCATED.match(message)
    what, path = (match["what"], match["path"]) if match else (message, "")
    missing = _MISSING_FIELD.match(what)
    if missing:
        what, path = "required, but missing", f"{path}.{missing['field']}"
    path = f"{at}{path}".lstrip(".")
    what = what[:1].lower() + what[1:]
    return f"{path}: {what}" if path else what
