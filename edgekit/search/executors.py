"""Where a round's trainings run: worker processes on this machine, or Ray tasks (``--executor``).

Both take the same jobs (one candidate, one seed each) and hand each result to the driver exactly
once, in whatever order they finish; the driver records it (:class:`~edgekit.search.store.TrainingStore`).
A worker that dies is retried: the local executor starts a fresh pool for the jobs that have no
result yet, the Ray executor relies on the task's ``max_retries``. A job's result is accepted only
once, so a retry can never count a training twice.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from edgekit.core.errors import EdgekitError
from edgekit.search.candidate import train_candidate

RETRIES = 2  # a worker may die twice per job (an OOM kill, a lost node) before the search gives up
OnResult = Callable[[int, dict], None]


def threads_per_candidate(settings, trainings: int | None = None) -> int:
    """Intra-op threads of one training in a round of ``trainings`` (None: a full round): the cores
    shared by the trainings that run at once. Both executors use it, so the same seeds give the same
    weights; a lone root training gets every core."""
    at_once = min(settings.workers, trainings or settings.workers)
    return settings.cpus_per_candidate or max(1, (os.cpu_count() or 1) // at_once)


class LocalExecutor:
    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def run(self, jobs: list[dict], on_result: OnResult) -> None:
        if min(self.workers, len(jobs)) == 1:
            for index, job in enumerate(jobs):
                # In this process: the per-epoch progress bar is shown (workers stay silent).
                on_result(index, {**train_candidate({**job, "verbose": True}), "node": "local"})
            return
        pending = list(range(len(jobs)))
        for _attempt in range(RETRIES + 1):
            pending = self._run_pool(jobs, pending, on_result)
            if not pending:
                return
        raise EdgekitError(f"{len(pending)} candidate training(s) lost their worker process {RETRIES + 1} times; "
                           "see the worker's output above")

    def _run_pool(self, jobs: list[dict], pending: list[int], on_result: OnResult) -> list[int]:
        """Run ``pending`` in a fresh pool; the indices whose worker died (the pool breaks for all its jobs)."""
        lost = []
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(self.workers, len(pending)), mp_context=context) as pool:
            futures = {pool.submit(train_candidate, jobs[i]): i for i in pending}
            for future in as_completed(futures):
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost.append(futures[future])
                    continue
                on_result(futures[future], {**result, "node": "local"})
        return sorted(lost)

    def close(self) -> None:
        pass

