"""Run one step of the plan in a child process that is stopped when the plan budget runs out.

Histogram calibration (entropy above all: ORT searches 2048-bin histograms per tensor in Python)
can cost tens of times a MinMax candidate, and its cost cannot be predicted from the candidates
before it. A budget the build promises must hold, so such a step runs where it can be killed.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable


class BudgetSpent(Exception):
    """The step was stopped at the plan budget; nothing it made is used."""


def _child(send, function, args) -> None:
    try:
        send.send(("ok", function(*args)))
    except BaseException as error:  # noqa: BLE001 - reported to the parent, which raises it there
        send.send(("error", error))
    finally:
        send.close()


def call_within(function: Callable, args: tuple, seconds: float, what: str):
    """``function(*args)`` in a fresh process (spawn: no threads or locks inherited from this one);
    its result, or BudgetSpent if it has not finished after ``seconds``. ``function`` and ``args``
    must pickle (a module-level function, arrays, paths)."""
    if seconds <= 0:
        raise BudgetSpent(f"no budget left for {what}")
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(send, function, args), daemon=True)
    started = time.monotonic()
    child.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise BudgetSpent(f"{what} stopped after {time.monotonic() - started:.0f} s at the plan budget")
        try:
            status, value = receive.recv()
        except EOFError:
            raise RuntimeError(f"{what} ended without a result (exit code {child.join(5) or child.exitcode})") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receive.close()
    if status == "error":
        raise value
    return value
