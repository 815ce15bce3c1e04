"""What the int8 planner tried and why it shipped what it shipped (manifest ``quantization_plan``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

TRIED = "tried"
SKIPPED = "not tried"
STOPPED = "stopped"  # started, then stopped at the plan budget


@dataclass(frozen=True)
class PlanCandidate:
    """One way to make (or not make) the int8 model, and what it measured.

    ``accuracy`` is in percent: top-1 on labelled held-out images, or top-1 agreement with the fp32
    model on held-out calibration images; ``drop`` is the fp32 model's accuracy minus this one, in
    points. ``p50_ms`` is None when latency was not measured (another architecture, or not tried).
    """

    name: str
    precision: str  # "fp32" | "int8"
    settings: Mapping = field(default_factory=dict)  # calibration, placement, excluded nodes ...
    status: str = TRIED  # TRIED, or why not (SKIPPED or STOPPED + reason)
    accuracy: float | None = None
    drop: float | None = None
    p50_ms: float | None = None
    size_bytes: int | None = None
    seconds: float | None = None  # time to make and measure this candidate
    within_budget: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)))

    def to_dict(self) -> dict:
        return {"name": self.name, "precision": self.precision, "settings": dict(self.settings),
                "status": self.status, "accuracy": self.accuracy, "drop": self.drop, "p50_ms": self.p50_ms,
                "size_bytes": self.size_bytes, "seconds": self.seconds, "within_budget": self.within_budget}

    @classmethod
    def from_dict(cls, record: dict) -> PlanCandidate:
        settings = record.get("settings")
        return cls(str(record.get("name")), str(record.get("precision")),
                   settings if isinstance(settings, dict) else {}, str(record.get("status", TRIED)),
                   record.get("accuracy"), record.get("drop"), record.get("p50_ms"), record.get("size_bytes"),
                   record.get("seconds"), record.get("within_budget"))


@dataclass(frozen=True)
class QuantizationPlan:
    """The planner's whole account: the budget, how accuracy was judged, every candidate, the choice."""

    objective: str  # "latency" | "size"
    max_drop: float  # points of accuracy
    metric: str  # what ``accuracy`` means
    evaluation: Mapping  # the held-out images: source, count, sha256, and how they were kept apart
    baseline_accuracy: float
    latency: str  # how latency was measured, or why it was not
    budget_seconds: float
    spent_seconds: float
    candidates: tuple[PlanCandidate, ...]
    chosen: str  # a candidate's name
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "evaluation", MappingProxyType(dict(self.evaluation)))
        object.__setattr__(self, "candidates", tuple(self.candidates))

    def candidate(self, name: str) -> PlanCandidate:
        return next(c for c in self.candidates if c.name == name)

    def to_dict(self) -> dict:
        return {"objective": self.objective, "max_drop": self.max_drop, "metric": self.metric,
                "evaluation": dict(self.evaluation), "baseline_accuracy": self.baseline_accuracy,
                "latency": self.latency, "budget_seconds": self.budget_seconds,
                "spent_seconds": self.spent_seconds, "candidates": [c.to_dict() for c in self.candidates],
                "chosen": self.chosen, "reason": self.reason}

    @classmethod
    def from_dict(cls, record: dict) -> QuantizationPlan:
        candidates = record.get("candidates")
        evaluation = record.get("evaluation")
        return cls(record.get("objective"), record.get("max_drop"), record.get("metric"),
                   evaluation if isinstance(evaluation, dict) else {}, record.get("baseline_accuracy"),
                   record.get("latency"), record.get("budget_seconds"), record.get("spent_seconds"),
                   tuple(PlanCandidate.from_dict(c) for c in candidates if isinstance(c, dict))
                   if isinstance(candidates, list) else (), record.get("chosen"), record.get("reason"))
