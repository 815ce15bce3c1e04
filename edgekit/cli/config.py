"""``--config FILE.toml``: a command's options read from a TOML file (a recipe); the command line wins.

Keys are the options' long names (``calib-size`` or ``calib_size``). Every value is checked before any
work, in two steps: its TOML type must be the option's (a count is an integer, not the string "300",
and 3.7 is refused rather than truncated to 3), then it goes through the option's own Click type and
callback, so ranges and choices are exactly the command line's. Every error names the file and the key.
Paths are relative to the file's folder. The checked values become Click's ``default_map``, so an
option given on the command line overrides the file as it overrides a default.

A file holds one command's options at its top level, or one table per command (``[build]``,
``[bench]``), so that a single recipe serves both.
"""

from __future__ import annotations

import difflib
import functools
import re
import tomllib
from pathlib import Path

import click

COMMAND_TABLES = ("build", "bench")
_FILE_FUNCTION = re.compile(r"^(?P<file>.+\.py):(?P<function>[A-Za-z_]\w*)$")


def config_option(*, path_suffixes: dict[str, str] | None = None):
    """Adds ``--config FILE.toml`` to a command. ``path_suffixes``: string options that name a file when
    their value ends with the suffix (``model = "net.onnx"``, ``target = "board.toml"``), so that such a
    value is taken relative to the file's folder too."""
    callback = functools.partial(_load_config, path_suffixes=path_suffixes or {})
    return click.option("--config", type=click.Path(exists=True, dir_okay=False), is_eager=True, expose_value=False,
                        callback=callback, metavar="FILE.toml",
                        help="Read options from a TOML recipe (keys: long option names; paths relative to "
                             "the file). Options on the command line override it.")


def _load_config(ctx: click.Context, _param, value, *, path_suffixes: dict[str, str]) -> None:
    if value is None:
        return
    path = Path(value)
    table = _command_table(path, _read_toml(path), ctx.info_name)
    options = {_long_name(p): p for p in ctx.command.params if isinstance(p, click.Option) and _long_name(p)}
    options.pop("config", None)  # a recipe does not name another recipe
    defaults = {}
    for key, raw in table.items():
        name = key.replace("_", "-")
        param = options.get(name)
        if param is None:
            raise click.UsageError(f"{path}: unknown key {key!r}{_suggestion(name, options, ctx.info_name)}")
        if param.name in defaults:
            raise click.UsageError(f"{path}: key {key!r} is given twice (as {name} and {name.replace('-', '_')})")
        value = _relative_to(path, param, _typed(path, key, raw, param), path_suffixes)
        try:
            param.process_value(ctx, value)  # Click's own conversion, ranges and callback: the CLI's rules
        except click.BadParameter as error:
            raise click.UsageError(f"{path}: {key!r}: {error.message}") from None
        defaults[param.name] = value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


def _suggestion(name: str, options: dict, command: str) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else f"; `edgekit {command}` takes {', '.join(sorted(options))}"


def _read_toml(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise click.UsageError(f"{path} is not UTF-8 text (offset {error.start})") from None
    except OSError as error:
        raise click.UsageError(f"{path} cannot be read ({error.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise click.UsageError(f"{path} is not valid TOML ({error})") from None


def _command_table(path: Path, data: dict, command: str) -> dict:
    """The top level, or the table named for the command when the file has per-command tables."""
    if not any(isinstance(data.get(name), dict) for name in COMMAND_TABLES):
        return data
    stray = [key for key in data if key not in COMMAND_TABLES]
    if stray:
        raise click.UsageError(f"{path}: key {stray[0]!r} lies outside the "
                               f"{'/'.join(f'[{n}]' for n in COMMAND_TABLES)} tables")
    if command not in data:
        raise click.UsageError(f"{path} has no [{command}] table for `edgekit {command}`")
    if not isinstance(data[command], dict):
        raise click.UsageError(f"{path}: {command!r} must be a table ([{command}])")
    return data[command]


def _long_name(param: click.Option) -> str | None:
    return next((opt[2:] for opt in param.opts if opt.startswith("--")), None)


def _expected(param: click.Option) -> tuple[tuple[type, ...], str]:
    """The TOML types an option's value may have, and how to say so."""
    kind = param.type
    if param.is_flag or isinstance(kind, click.types.BoolParamType):
        return (bool,), "true or false"
    if isinstance(kind, click.types.IntParamType):
        return (int,), "an integer"
    if isinstance(kind, click.types.FloatParamType):
        return (int, float), "a number"
    if getattr(param.callback, "comma_separated", False):
        return (str, list), "an array of numbers (or a comma-separated string)"
    if isinstance(kind, (click.Choice, click.Path, click.types.StringParamType)):
        return (str,), "a string"
    return (str, int, float), "a string or a number"


def _type_name(value) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__)


def _typed(path: Path, key: str, raw, param: click.Option):
    """``raw`` if its TOML type suits the option (element by element for a repeatable one)."""
    types, wanted = _expected(param)
    if param.multiple:
        if not isinstance(raw, list):
            raise click.UsageError(f"{path}: {key!r} must be an array of {wanted}, got {_type_name(raw)} {raw!r}")
        return [_scalar(path, key, item, types, wanted) for item in raw]
    return _scalar(path, key, raw, types, wanted)


def _scalar(path: Path, key: str, raw, types: tuple[type, ...], wanted: str):
    if isinstance(raw, bool) != (bool in types) or not isinstance(raw, types):  # bool is an int to Python
        raise click.UsageError(f"{path}: {key!r} must be {wanted}, got {_type_name(raw)} {raw!r}")
    if isinstance(raw, list):  # the comma-separated numbers of --mean/--std
        if not raw or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in raw):
            raise click.UsageError(f"{path}: {key!r} must be {wanted}, got {raw!r}")
        return ",".join(str(n) for n in raw)
    return raw


def _relative_to(path: Path, param: click.Option, value, path_suffixes: dict[str, str]):
    """A relative path in the file means relative to the file's folder, not to wherever edgekit runs."""
    suffix = path_suffixes.get(param.name)
    # A user module as a file (``model = "nets/my_net.py:build"``): the file part is a path too.
    spec = _FILE_FUNCTION.match(value) if suffix is not None and isinstance(value, str) else None
    if spec is not None:
        return f"{_relative_to(path, param, spec['file'], {param.name: '.py'})}:{spec['function']}"
    names_file = isinstance(param.type, click.Path) or (suffix is not None and str(value).lower().endswith(suffix))
    if not names_file or not isinstance(value, str):
        return value
    given = Path(value).expanduser()
    return str(given if given.is_absolute() else path.parent / given)
