"""What ``edgekit build --max-drop`` asks the int8 planner for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlanRequest:
    max_drop: float  # points of the accuracy metric an int8 plan may lose against fp32
    objective: str = "latency"  # choice.OBJECTIVES
    budget_seconds: float | None = None  # None: trials.BUDGET_FACTOR x a plain build
    plain_build_seconds: float = 0.0  # export + simplify + parity, already spent
    # Why latency cannot be measured on this host for the target (None: it can): plans are then
    # chosen by accuracy and size.
    latency_not_measured: str | None = None
