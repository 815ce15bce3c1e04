"""`edgekit targets --probe --host`: read a board's CPU features over SSH (no Python needed there)."""

from __future__ import annotations

from edgekit.core.errors import EdgekitError
from edgekit.runtimes.remote.ssh import Board, connect
from edgekit.targets.isa import IsaReport, parse_cpuinfo


def probe_board(board: Board) -> tuple[IsaReport, str]:
    with connect(board) as connection:
        code, machine, err = connection.run(["uname", "-m"], timeout=30)
        if code != 0:
            raise EdgekitError(f"{connection.label}: uname -m failed: {err.strip()[:200]}")
        code, cpuinfo, err = connection.run(["cat", "/proc/cpuinfo"], timeout=30)
        if code != 0 or not cpuinfo.strip():
            raise EdgekitError(f"{connection.label}: cannot read /proc/cpuinfo (is it Linux?): {err.strip()[:200]}")
        return parse_cpuinfo(cpuinfo, arch=machine.strip()), connection.label
