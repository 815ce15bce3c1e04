"""The search's finished trainings, kept across runs: rerunning a search skips what already trained.

One training is one candidate with one seed. Its key hashes everything that decides its weights:
the config, the parent's key (so a chain of choices is part of it), the data, the budget and the
seed; not the executor, the node or the thread count, so a search begun locally resumes on Ray.
A training counts as finished only when its result file exists; the driver writes that file once,
after the checkpoint, so a worker that died half-way leaves nothing that could count twice.

The store lives beside the output folder while a search runs (``.NAME.candidates``: a crash
leaves it for the next run) and moves into the published folder (``work/candidates``) at the end;
``--force`` over a finished search starts from that copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

RESULT_FIELDS = ("val_accuracy", "correct", "train_loss", "epochs", "train_seconds", "transfer", "node")


def training_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


class TrainingStore:
    def __init__(self, out: Path) -> None:
        self.folder = out.parent / f".{out.name}.candidates"
        published = out / "work" / "candidates"
        if not self.folder.exists() and published.is_dir():
            # Hard links: the finished search stays intact whatever this run does.
            shutil.copytree(published, self.folder, copy_function=os.link)
        self.folder.mkdir(parents=True, exist_ok=True)

    def checkpoint(self, key: str, seed: int) -> Path:
        return self.folder / key / f"s{seed}.pt"

    def _result_path(self, key: str, seed: int) -> Path:
        return self.folder / key / f"s{seed}.json"

    def finished(self, key: str, seed: int) -> dict | None:
        path = self._result_path(key, seed)
        if not path.is_file() or not self.checkpoint(key, seed).is_file():
            return None
        return json.loads(path.read_text())

    def record(self, key: str, seed: int, result: dict) -> dict:
        """Keep a finished training's result (once: a result already there wins)."""
        known = self.finished(key, seed)
        if known is not None:
            return known
        row = {name: result.get(name) for name in RESULT_FIELDS}
        path = self._result_path(key, seed)
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(row) + "\n")
        os.replace(partial, path)  # atomic: a result file is whole or absent
        return row

    def move_into(self, work: Path) -> Path:
        """At the end of a search: the store becomes ``work/candidates`` of the folder being published."""
        target = work / "candidates"
        for partial in self.folder.rglob("*.partial"):
            partial.unlink()
        os.replace(self.folder, target)
        return target
