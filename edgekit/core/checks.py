"""Range checks for the Python API's options, worded like the CLI's (which checks with Click types).

The CLI rejects bad values before a function is called; these keep the same promise for callers of
the Python API, so ``bench_artifact(runs=0)`` fails with the same one line as ``--runs 0``.
"""

from __future__ import annotations

import math
import numbers

from edgekit.core.errors import EdgekitError


def is_integer(value) -> bool:
    """An int (numpy's too), not a bool: `True` is an int subclass and would pass as 1."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_int(option: str, value, low: int, high: int | None = None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not is_integer(value) or value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"from {low} to {high}"
        raise EdgekitError(f"{option} must be an integer {bounds}, got {value!r}")


def require_number(option: str, value, low: float, high: float, *, low_open: bool = False,
                   high_open: bool = False, optional: bool = False) -> None:
    """A finite number within bounds; NaN fails every comparison, so it is refused explicitly."""
    if value is None and optional:
        return
    valid = is_number(value) and math.isfinite(value)
    if valid:
        valid = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not valid:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise EdgekitError(f"{option} must be a finite number in {left}{low:g}, {high:g}{right}, got {value!r}")
