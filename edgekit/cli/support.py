"""Click types and helpers for edgekit's options, and the one conversion of failures to a single `error:` line.

Values are checked by Click at the boundary, before a command runs: a 0, a negative number, NaN or
infinity never reaches the pipeline disguised as "use the default".
"""

from __future__ import annotations

import errno
import math

import click
from click.core import ParameterSource

from edgekit.core.errors import EdgekitError

COUNT = click.IntRange(min=1)  # images, runs, epochs, batch sizes...
NON_NEGATIVE = click.IntRange(min=0)
THREADS = click.IntRange(1, 1024)
SEED = click.IntRange(0, 2**32 - 1)  # numpy's seed range
INPUT_SIZE = click.IntRange(1, 4096)
NUM_CLASSES = click.IntRange(1, 100_000)


class FiniteFloat(click.FloatRange):
    """FloatRange that also refuses nan and inf (NaN passes every range comparison)."""

    name = "finite number"

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def fraction() -> FiniteFloat:
    """Strictly between 0 and 1."""
    return FiniteFloat(0, 1, min_open=True, max_open=True)


def positive_float(maximum: float | None = None) -> FiniteFloat:
    return FiniteFloat(0, maximum, min_open=True)


class ImageChannels(click.ParamType):
    """1 (grayscale) or 3 (RGB): what an image file decodes to."""

    name = "1|3"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool) and value in (1, 3):
            return value
        if str(value).strip() in ("1", "3"):
            return int(value)
        self.fail(f"{value!r} is not 1 (grayscale) or 3 (RGB)", param, ctx)


def float_list(*, positive: bool = False):
    """Callback for comma-separated per-channel numbers (--mean, --std)."""

    def parse(_ctx, param, value):
        if value is None:
            return None
        try:
            numbers = tuple(float(v) for v in value.split(","))
        except ValueError:
            raise click.BadParameter(f"expected comma-separated numbers, got {value!r}", param=param) from None
        if not all(math.isfinite(n) for n in numbers):
            raise click.BadParameter(f"{value!r} contains a value that is not a finite number", param=param)
        if positive and not all(n > 0 for n in numbers):
            raise click.BadParameter(f"every value must be > 0, got {value!r}", param=param)
        return numbers

    parse.comma_separated = True  # a recipe (edgekit.cli.config) may give a TOML array instead
    return parse


def given_options_as_args(ctx: click.Context, *, skip: tuple[str, ...] = ()) -> list[str]:
    """The options the user gave (not their defaults), as arguments again: what ``edgekit train``
    hands to the ranks torchrun starts. Options named in ``skip`` are left out."""
    args = []
    for param in ctx.command.params:
        name = param.name
        if name in skip or not isinstance(param, click.Option):
            continue
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            continue
        value = ctx.params[name]
        if param.is_flag:
            flag = param.opts[0] if value else (param.secondary_opts[0] if param.secondary_opts else None)
            if flag:
                args.append(flag)
        elif param.multiple:
            for item in value:
                args += [param.opts[0], str(item)]
        else:
            args += [param.opts[0], str(value)]
    return args


def describe_os_error(error: OSError) -> str:
    """``[Errno 28] No space left on device: 'x'`` -> ``no space left on device: x``, one line."""
    reason = error.strerror or type(error).__name__
    if error.errno == errno.ENOSPC:
        reason = "no space left on device"
    names = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{reason[0].lower()}{reason[1:]}" + (f": {' -> '.join(names)}" if names else "")


# What a user can act on; anything else is a bug and keeps its traceback.
USER_FAILURES = (EdgekitError, click.UsageError, OSError, MemoryError)


def one_line_failure(error: BaseException) -> tuple[str, int] | None:
    """(message, exit status) for failures a user can act on; None for bugs (they keep their traceback)."""
    if isinstance(error, EdgekitError):
        return error.one_line(), 1
    if isinstance(error, click.UsageError):
        return " ".join(error.format_message().split()), error.exit_code
    if isinstance(error, OSError):
        return describe_os_error(error), 1
    if isinstance(error, MemoryError):
        return "out of memory (try a smaller --calib-size, --limit, --batch-size or --input-size)", 1
    return None
