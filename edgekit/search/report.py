"""Search results: Pareto front (accuracy up, int8 latency down), JSON, CSV and the terminal table.

Accuracies are means over seeds with their 95% interval, and a child's gain over its step's
control with its paired interval (:mod:`edgekit.search.significance`); the decision column says
which child a step adopted, or that no gain was significant and the parent was kept.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

FIELDS = ("id", "step", "label", "parent", "params", "macs", "val_accuracy", "val_low", "val_high", "gain", "gain_low",
          "gain_high", "decision", "int8_p50_ms", "fp32_p50_ms", "score", "pareto", "epochs", "train_seconds")


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


def _points(value: float | None, *, sign: bool = False) -> str:
    return "-" if value is None else f"{100 * value:{'+' if sign else ''}.2f}"


def table_rows(summary: dict) -> list[tuple[str, ...]]:
    """The table's cells, latency columns aside: what the local and Ray executors must agree on."""
    rows = []
    for c in summary["candidates"]:
        best = " <- best" if c["id"] == summary["best"] else ""
        accuracy = f"{_points(c['val_accuracy'])} [{_points(c['val_low'])}, {_points(c['val_high'])}]"
        gain = "-" if c["gain"] is None else (f"{_points(c['gain'], sign=True)} "
                                              f"[{_points(c['gain_low'], sign=True)}, {_points(c['gain_high'], sign=True)}]")
        rows.append((c["id"], c["step"], c["label"] + best, f"{c['params']:,}", f"{c['macs'] / 1e6:.1f}", accuracy,
                     gain, c["decision"]))
    return rows


def print_search_results(summary: dict, console: Console | None = None) -> None:
    """`edgekit search`: one row per candidate, the best marked."""
    console = console or Console(width=max(Console().width, 180))
    settings = summary["settings"]
    seeds = settings.get("repeats", 1)
    table = Table(title=f"edgekit search: {settings['model']} ({summary['split']['train']} train / "
                        f"{summary['split']['val']} val images, {summary['classes']} classes; {seeds} seed(s) per "
                        f"candidate, 95% paired bootstrap intervals; int8 latency on {settings['target']}, batch 1)",
                  box=box.SIMPLE_HEAD)
    for title in ("id", "step", "candidate", "params", "MMACs", "val acc % [95%]", "gain vs control [95%]", "decision",
                  "int8 ms", "fp32 ms", "score", "pareto"):
        table.add_column(title, justify="left" if title in ("id", "step", "candidate", "decision") else "right")
    ms = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for c, cells in zip(summary["candidates"], table_rows(summary)):
        table.add_row(*cells, ms(c["int8_p50_ms"]), ms(c["fp32_p50_ms"]), f"{c['score']:.2f}", "*" if c["pareto"] else "")
    console.print(table)
