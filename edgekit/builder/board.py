"""``edgekit build --host user@board``: the build's timings (latency check and every int8 plan the
planner tries) are taken on the board itself, through the board runner over SSH."""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Iterator

from edgekit.backends.base import RuntimeBackend
from edgekit.core.errors import EdgekitError
from edgekit.core.progress import say
from edgekit.runtimes.remote.runner import BoardTimer
from edgekit.runtimes.remote.ssh import Board
from edgekit.targets.isa import describe_host
from edgekit.targets.profiles import ARCH_ALIASES


def timing_on_board(board: Board | None, backend: RuntimeBackend):
    """A context in which ``backend.latency`` times on ``board``; it yields the board's description
    (None without a board). Checked before any build work: the runtime, the connection, the arch."""
    if board is None:
        return nullcontext(None)
    if not backend.runs_on_board_runner:
        raise EdgekitError(f"--host: target {backend.target.name} runs {backend.runtime}; the board runner "
                           "times ONNX Runtime models only (build for rpi4 or cpu)")
    return _on_board(board, backend)


@contextmanager
def _on_board(board: Board, backend: RuntimeBackend) -> Iterator[dict]:
    target = backend.target
    with BoardTimer(board) as timer:
        arch = ARCH_ALIASES.get(str(timer.info.get("arch", "")).lower(), timer.info.get("arch"))
        if arch != target.arch:
            raise EdgekitError(f"--host {timer.label} is {arch}, target {target.name} is {target.arch}: its "
                               "timings would not be the target's")
        if timer.emulated:
            raise EdgekitError(f"--host {timer.label} runs its python under qemu user-mode emulation: timings there "
                               "say nothing about a real CPU (without --host, rpi4 plans are ranked by "
                               "estimated Cortex-A72 cycles)")
        host = describe_host(timer.info, board=timer.label)
        say(f"timing on board {timer.label}: {host['cpu']}, {host['arch']}, {host['os']}, "
            f"onnxruntime {host['onnxruntime']}")
        backend.board = timer
        try:
            yield host
        finally:
            backend.board = None
