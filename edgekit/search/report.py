"""Search results: Pareto front (accuracy up, int8 latency down), JSON and CSV (the table: edgekit.reporting)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

FIELDS = ("id", "step", "label", "parent", "params", "macs", "val_accuracy", "int8_p50_ms", "fp32_p50_ms",
          "score", "pareto", "epochs", "train_seconds")


def mark_pareto(candidates) -> None:
    """A candidate is on the front if no other is at least as accurate and as fast, and better in one."""
    measured = [c for c in candidates if c.val_accuracy is not None]
    for c in measured:
        latency = c.int8_p50_ms if c.int8_p50_ms is not None else 0.0
        c.pareto = not any(
            o.val_accuracy >= c.val_accuracy and (o.int8_p50_ms or 0.0) <= latency
            and (o.val_accuracy > c.val_accuracy or (o.int8_p50_ms or 0.0) < latency)
            for o in measured if o is not c
        )


def write_results(summary: dict, out: Path) -> None:
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    with (out / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for c in summary["candidates"]:
            writer.writerow({k: c[k] for k in FIELDS})
