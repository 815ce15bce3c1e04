"""What the int8 planner tried and why it shipped what it shipped (manifest ``quantization_plan``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from edgekit.artifact.codec import Record

TRIED = "tried"
SKIPPED = "not tried"
STOPPED = "stopped"  # started, then stopped at the plan budget


@dataclass(frozen=True)
class PlanCandidate(Record):
    """One way to make (or not make) the int8 model, and what it measured.

    ``accuracy`` is in percent: top-1 on labelled held-out images, or top-1 agreement with the fp32
    model on held-out calibration images; ``drop`` is the fp32 model's accuracy minus this one, in
    points. ``p50_ms`` is None when latency was not measured (another architecture, or not tried);
    ``est_mcycles`` is then the estimated cost where the target has a cost model: millions of
    Cortex-A72 cycles per inference from emulated instruction counts (a ranking, never a time).
    """

    name: str
    precision: str  # "fp32" | "int8"
    settings: Mapping[str, Any] = field(default_factory=dict)  # calibration, placement, excluded nodes ...
    status: str = TRIED  # TRIED, or why not (SKIPPED or STOPPED + reason)
    accuracy: float | None = None
    drop: float | None = None
    p50_ms: float | None = None
    est_mcycles: float | None = None
    size_bytes: int | None = None
    seconds: float | None = None  # time to make and measure this candidate
    within_budget: bool | None = None


def speed_cost(candidate: PlanCandidate) -> float | None:
    """What the planner ranks speed by: the measured p50, else the estimated cycles (None: neither)."""
    return candidate.p50_ms if candidate.p50_ms is not None else candidate.est_mcycles


def speed_words(candidate: PlanCandidate, other: PlanCandidate | None = None) -> str:
    """``candidate``'s speed in words, against ``other``'s when given ("2.452 vs 3.485 ms p50")."""
    measured = candidate.p50_ms is not None
    mine, theirs = speed_cost(candidate), speed_cost(other) if other is not None else None
    unit = "ms p50" if measured else "M estimated A72 cycles"
    digits = 3 if measured else 2
    return f"{mine:.{digits}f}" + (f" vs {theirs:.{digits}f}" if theirs is not None else "") + f" {unit}"


@dataclass(frozen=True)
class QuantizationPlan(Record):
    """The planner's whole account: the budget, how accuracy was judged, every candidate, the choice."""

    objective: str  # "latency" | "size"
    max_drop: float  # points of accuracy
    metric: str  # what ``accuracy`` means
    evaluation: Mapping[str, Any]  # the held-out images: source, count, sha256, and how they were kept apart
    baseline_accuracy: float
    latency: str  # how latency was measured, or why it was not
    budget_seconds: float
    spent_seconds: float
    candidates: tuple[PlanCandidate, ...]
    chosen: str  # a candidate's name
    reason: str

    def candidate(self, name: str) -> PlanCandidate:
        return next(c for c in self.candidates if c.name == name)
