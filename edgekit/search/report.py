"""Search results: Pareto front (accuracy up, int8 latency down), JSON, CSV and the terminal table."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

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


def print_search_results(summary: dict, console: Console | None = None) -> None:
    """`edgekit search`: one row per candidate, the best marked."""
    console = console or Console(width=max(Console().width, 150))
    settings = summary["settings"]
    table = Table(title=f"edgekit search: {settings['model']} ({summary['split']['train']} train / "
                        f"{summary['split']['val']} val images, {summary['classes']} classes; int8 latency on "
                        f"{settings['target']}, batch 1)", box=box.SIMPLE_HEAD)
    for title in ("id", "step", "candidate", "params", "MMACs", "val acc", "int8 ms", "fp32 ms", "score", "pareto"):
        table.add_column(title, justify="left" if title in ("id", "step", "candidate") else "right")
    for c in summary["candidates"]:
        best = " <- best" if c["id"] == summary["best"] else ""
        ms = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(c["id"], c["step"], c["label"] + best, f"{c['params']:,}", f"{c['macs'] / 1e6:.1f}",
                      f"{100 * c['val_accuracy']:.2f}%", ms(c["int8_p50_ms"]), ms(c["fp32_p50_ms"]),
                      f"{c['score']:.2f}", "*" if c["pareto"] else "")
    console.print(table)
