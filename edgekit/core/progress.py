"""Progress and status lines on stderr, so stdout stays clean for tables and JSON."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

console = Console(stderr=True, highlight=False)


def say(message: str) -> None:
    console.print(f"[dim]edgekit[/dim] {message}")


def warn(message: str) -> None:
    console.print(f"[yellow]warning:[/yellow] {message}")


@contextlib.contextmanager
def progress(description: str, total: int, *, enabled: bool = True) -> Iterator:
    """``with progress("calibrating", n) as advance: ... advance()``"""
    bar = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False, disable=not enabled or os.environ.get("EDGEKIT_NO_PROGRESS") == "1",
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(step: int = 1) -> None:
            bar.advance(task, step)

        yield advance


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Swallow libraries' chatter: ORT's calibrator print()s per call and logs a root-logger
    warning about pre-processing on every quantize_static. Errors still raise."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
