"""One round of the search: every candidate of the round trained with every seed, through an executor.

A round's jobs are (candidate, seed) pairs; the ones the store already holds are not trained again
(a rerun resumes), the others go to the executor. A candidate's accuracy is the mean over its
seeds; its checkpoint (the weights its children start from, and best.pt) is the first seed's, so
the path through the search does not depend on which seed happened to score highest.
"""

from __future__ import annotations

import os

import numpy as np

from edgekit.core.progress import progress
from edgekit.search.executors import threads_per_candidate
from edgekit.search.significance import accuracy_interval, correctness
from edgekit.search.store import TrainingStore, training_key

FAULT_ENV = "EDGEKIT_SEARCH_TEST_FAULT"  # tests only: a marker file; the first worker to create it dies


class RoundRunner:
    def __init__(self, settings, executor, store: TrainingStore, *, data_path, data_key: str,
                 preprocessing: dict) -> None:
        self.settings, self.executor, self.store = settings, executor, store
        self.data_path, self.data_key, self.preprocessing = str(data_path), data_key, preprocessing
        self.seeds = [settings.seed + r for r in range(settings.repeats)]
        self.correct: dict[str, np.ndarray] = {}  # candidate id -> (seeds x validation images), 1 = right

    def key(self, candidate, parent, epochs: int) -> str:
        s = self.settings
        return training_key({"config": candidate.config, "parent": parent.key if parent else None,
                             "data": self.data_key, "epochs": epochs, "minutes": s.minutes, "lr": s.lr,
                             "batch_size": s.batch_size, "device": self._device()})

    def _device(self) -> str:
        return "cuda" if self.settings.gpus_per_candidate else "cpu"

    def _job(self, candidate, parent, epochs: int, seed: int, threads: int) -> dict:
        s = self.settings
        return {"config": candidate.config, "parent": str(parent.checkpoint) if parent else None,
                "data": self.data_path, "epochs": epochs, "minutes": s.minutes, "lr": s.lr,
                "batch_size": s.batch_size, "seed": seed, "threads": threads, "device": self._device(),
                "out": str(self.store.checkpoint(candidate.key, seed)), "preprocessing": self.preprocessing,
                "fault_marker": os.environ.get(FAULT_ENV)}

    def train(self, batch: list, parents: dict, *, epochs: int, label: str) -> None:
        """Train ``batch`` (candidates; ``parents`` maps a candidate id to its parent or None)."""
        for candidate in batch:
            candidate.key = self.key(candidate, parents[candidate.id], epochs)
        wanted = [(c, seed) for c in batch for seed in self.seeds]
        todo = [(c, seed) for c, seed in wanted if self.store.finished(c.key, seed) is None]
        # Threads from the whole round, not from what is left of it: a resumed round trains alike.
        threads = threads_per_candidate(self.settings, len(wanted))
        jobs = [self._job(c, parents[c.id], epochs, seed, threads) for c, seed in todo]
        skipped = len(wanted) - len(todo)
        with progress(f"{label} ({skipped} of {len(wanted)} already trained)" if skipped else label,
                      len(jobs)) as advance:
            def on_result(index: int, result: dict) -> None:
                candidate, seed = todo[index]
                self.store.record(candidate.key, seed, result)
                advance()

            if jobs:
                self.executor.run(jobs, on_result)
        for candidate in batch:
            self._summarise(candidate)

    def _summarise(self, candidate) -> None:
        runs = [self.store.finished(candidate.key, seed) for seed in self.seeds]
        self.correct[candidate.id] = correctness([run["correct"] for run in runs])
        interval = accuracy_interval(self.correct[candidate.id])
        candidate.val_accuracy, candidate.val_low, candidate.val_high = interval.mean, interval.low, interval.high
        candidate.checkpoint = str(self.store.checkpoint(candidate.key, self.seeds[0]))
        candidate.epochs, candidate.transfer = runs[0]["epochs"], runs[0]["transfer"]
        candidate.train_seconds = sum(run["train_seconds"] for run in runs)
        candidate.runs = [{"seed": seed, "val_accuracy": run["val_accuracy"], "train_loss": run["train_loss"],
                           "node": run["node"]}
                          for seed, run in zip(self.seeds, runs)]
