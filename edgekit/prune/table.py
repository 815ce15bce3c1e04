"""`edgekit prune`'s presenter: the rounds as a terminal table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_prune_rounds(result) -> None:
    table = Table(title=f"edgekit prune: {result.summary['settings']['method']} -> {result.checkpoint}")
    for title in ("stage", "conv sparsity", "params", "val acc before fine-tune", "val acc"):
        table.add_column(title, justify="left" if title == "stage" else "right")
    for row in result.rounds:
        before = row.get("accuracy_before_finetune")
        table.add_row(row["stage"], f"{100 * row['conv_sparsity']:.1f}%", f"{row['params']:,}",
                      "" if before is None else f"{100 * before:.2f}%", f"{100 * row['val_accuracy']:.2f}%")
    Console(stderr=True).print(table)
