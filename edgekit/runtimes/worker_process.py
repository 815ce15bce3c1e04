"""Start one measurement worker (``python -m edgekit.benchmark.worker``) in a fresh process.

Latency is always measured this way, by bench and by the build's checks and planner alike: a fresh
process per model keeps one runtime's thread pools and allocator out of another's numbers.
"""

from __future__ import annotations

import sys

from edgekit.core.errors import EdgekitError
from edgekit.runtimes.board_runner import RunnerError, argv_from_environment
from edgekit.runtimes.board_runner import run_worker as run_board_worker

# A JSON argv put before every worker, such as ["qemu-x86_64-static", "-cpu", "Haswell"]. Under qemu
# user mode a child x86 process on an x86 host runs natively (binfmt_misc has no entry for the host's
# own architecture), so a build or bench run under emulation names the emulator here, or its latency
# workers would measure the real CPU's int8 kernels.
WORKER_PREFIX = "EDGEKIT_WORKER_PREFIX"
WORKER_MODULE = "edgekit.benchmark.worker"


def worker_prefix() -> list[str]:
    try:
        return argv_from_environment(WORKER_PREFIX, '["qemu-x86_64-static", "-cpu", "Haswell"]') or []
    except RunnerError as error:
        raise EdgekitError(str(error)) from None


def measure_in_worker(job: dict) -> dict:
    """The worker's result for ``job`` (board_runner.measure's keys; ``ok`` false with ``error`` on failure)."""
    return run_board_worker(job, [*worker_prefix(), sys.executable, "-m", WORKER_MODULE])
