"""The int8 planner's candidate table: REPORT.md's section and the build's terminal table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from edgekit.artifact.plan_records import QuantizationPlan

def _plan_rows(plan: QuantizationPlan) -> list[list[str]]:
    rows = []
    for c in plan.candidates:
        settings = ", ".join(f"{k}={v}" for k, v in c.settings.items() if k != "fallback_nodes") or "-"
        tried = c.status == "tried"
        rows.append([("**" + c.name + "**") if c.name == plan.chosen else c.name, c.precision, settings,
                     f"{c.accuracy:.2f}" if tried else "-", f"{c.drop:+.2f}" if tried else "-",
                     _speed(c) if tried else "-",
                     f"{c.size_bytes / 1e6:.2f}" if tried else "-", "yes" if c.within_budget else
                     ("no" if tried else c.status)])
    return rows


# Speed: a measured p50 in ms, or "~N" estimated millions of Cortex-A72 cycles (never a time).
PLAN_COLUMNS = ("plan", "precision", "settings", "accuracy %", "drop (points)", "p50 ms or ~est. Mcyc", "size MB",
                "within budget")


def _speed(candidate) -> str:
    if candidate.p50_ms is not None:
        return f"{candidate.p50_ms:.3f}"
    return f"~{candidate.est_mcycles:.2f}" if candidate.est_mcycles is not None else "-"


def render_plan(plan: QuantizationPlan) -> list[str]:
    """REPORT.md's table of every int8 plan the planner considered (edgekit.quantize.plan)."""
    evaluation = plan.evaluation
    lines = ["", "## int8 plan (`--max-drop`)", "",
             f"Budget: at most {plan.max_drop:g} points of {plan.metric}, objective {plan.objective}. Judged on "
             f"{evaluation.get('images')} held-out images from `{evaluation.get('source')}` "
             f"({evaluation.get('selection')}); fp32: {plan.baseline_accuracy:.2f}%. {plan.latency[:1].upper()}"
             f"{plan.latency[1:]}. Spent {plan.spent_seconds:.0f} s of a {plan.budget_seconds:.0f} s plan budget.",
             "", "| " + " | ".join(PLAN_COLUMNS) + " |", "|" + "---|" * len(PLAN_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _plan_rows(plan)]
    lines += ["", f"**Shipped: {plan.chosen}** ({plan.reason})."]
    return lines


def print_plan_table(plan: QuantizationPlan, console: Console | None = None) -> None:
    """The REPORT table without its settings column (REPORT.md and the manifest have them)."""
    table = Table(title=f"int8 plans (max drop {plan.max_drop:g} points; {plan.metric})")
    shown = [i for i, title in enumerate(PLAN_COLUMNS) if title != "settings"]
    for i in shown:
        table.add_column(PLAN_COLUMNS[i], overflow="fold")
    for row in _plan_rows(plan):
        table.add_row(*[row[i].replace("**", "") for i in shown])
    (console or Console()).print(table)
    (console or Console()).print(f"shipped: {plan.chosen} ({plan.reason})")
