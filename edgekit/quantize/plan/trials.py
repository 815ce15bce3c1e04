"""Measuring one candidate: accuracy on the held-out images, size, and latency where it can be measured."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.artifact.plan_records import (
    SKIPPED,
    STOPPED,
    TRIED,
    PlanCandidate,
    speed_words,
)
from edgekit.core.progress import say
from edgekit.quantize.plan.choice import fits
from edgekit.quantize.plan.deadline import BudgetSpent
from edgekit.quantize.plan.evaluation import top1_percent
from edgekit.runtimes.board_runner import EXACT_KERNELS

LATENCY_RUNS, LATENCY_WARMUP, LATENCY_SECONDS = 60, 5, 5.0
MIN_BUDGET_SECONDS = 60.0
BUDGET_FACTOR = 6.0  # default plan budget: this many times a plain build (export + the fixed recipe)
FIXED = "fixed"  # the target's own recipe: the candidate a plain build makes


@dataclass
class Trials:
    """The candidates measured so far, against one clock.

    ``truth`` is the labels of the judging images, or the fp32 model's logits on them (agreement);
    ``max_drop`` is the request's accuracy budget (points) every candidate is judged against.
    ``logits`` runs a model file on the judging images with the given x86 int8 kernels
    (board_runner.X86_INT8_KERNELS); ``latency`` times it the same way (None: not measured).
    Without a ``budget_seconds`` the budget is set once the fixed recipe has been measured:
    BUDGET_FACTOR x (``plain_seconds`` already spent exporting + the fixed recipe's own time).
    """

    judge: np.ndarray
    truth: np.ndarray
    baseline: float
    logits: Callable[[Path, str], np.ndarray]
    latency: Callable[[Path, str], float] | None
    max_drop: float
    # What ``latency`` returns: a measured p50 ("p50_ms") or estimated Cortex-A72 Mcycles ("est_mcycles").
    speed_field: str = "p50_ms"
    budget_seconds: float | None = None
    plain_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    candidates: list[PlanCandidate] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # logits on the judging images
    _max_cost: float = 0.0

    @property
    def spent(self) -> float:
        return time.monotonic() - self.started

    def has_time(self, cost_factor: float = 1.0) -> bool:
        """True if one more candidate, ``cost_factor`` times as costly as the costliest so far, fits."""
        return self.budget_seconds is None or self.spent + cost_factor * self._max_cost <= self.budget_seconds

    def seconds_left(self) -> float | None:
        """Budget left for one more calibration, keeping back what quantizing and measuring the
        result costs (the cheapest int8 candidate so far); None: no budget."""
        if self.budget_seconds is None:
            return None
        tried = [c.seconds for c in self.candidates if c.precision == "int8" and c.seconds is not None]
        return self.budget_seconds - self.spent - (min(tried) if tried else 0.0)

    def fits(self, candidate: PlanCandidate) -> bool:
        return fits(candidate, self.max_drop)

    def any_int8_fits(self) -> bool:
        return any(self.fits(c) for c in self.candidates if c.precision == "int8")

    def candidate_named(self, name: str) -> PlanCandidate:
        return next(c for c in self.candidates if c.name == name)

    def skip(self, name: str, precision: str, settings: dict, why: str) -> None:
        self.candidates.append(PlanCandidate(name, precision, settings, status=f"{SKIPPED}: {why}"))

    def measure(self, name: str, precision: str, settings: dict, make: Callable[[], Path | tuple[Path, dict]], *,
                cost_factor: float = 1.0) -> PlanCandidate:
        """Make the candidate's model file (``make``: its path, or its path and settings it learnt
        while making it), then measure it with the x86 int8 kernels its settings name (exact unless
        ``x86_int8_kernels`` says otherwise). A candidate whose quantizer fails is recorded as failed,
        not fatal: other plans may still work. ``cost_factor``: how much costlier than the costliest
        so far this one may be (a new histogram calibration)."""
        # fp32 and the fixed recipe are what a plain build makes: always measured, so a plan is never
        # judged against less than the plain build would have shipped.
        if name not in ("fp32", FIXED) and not self.has_time(cost_factor):
            self.skip(name, precision, settings, f"plan budget of {self.budget_seconds:.0f} s spent")
            return self.candidates[-1]
        started = time.monotonic()
        try:
            made = make()
        except BudgetSpent as error:
            self.candidates.append(PlanCandidate(name, precision, settings, status=f"{STOPPED}: {error}"))
            say(f"  plan {name}: {error}")
            return self.candidates[-1]
        except Exception as error:  # noqa: BLE001 - EdgekitError from the quantizers, or their own errors
            self.candidates.append(PlanCandidate(name, precision, settings, status=f"failed: {error}"))
            return self.candidates[-1]
        path, learnt = made if isinstance(made, tuple) else (made, {})
        settings = {**settings, **learnt}
        kernels = kernels_of(settings)
        outputs = self.logits(path, kernels)
        accuracy = top1_percent(outputs, self.truth)
        speed = self.latency(path, kernels) if self.latency is not None else None
        size = sum(f.stat().st_size for f in _with_companions(path))
        drop = round(self.baseline - accuracy, 4)
        cost = time.monotonic() - started
        self._max_cost = max(self._max_cost, cost)
        candidate = PlanCandidate(name, precision, settings, TRIED, accuracy=accuracy, drop=drop, **{self.speed_field: speed},
                                  size_bytes=size, seconds=round(cost, 2),
                                  within_budget=drop <= self.max_drop + 1e-9)
        self.candidates.append(candidate)
        self.files[name] = path
        self.outputs[name] = outputs
        if self.budget_seconds is None and name == FIXED:
            plain = self.plain_seconds + cost
            self.budget_seconds = max(MIN_BUDGET_SECONDS, BUDGET_FACTOR * plain)
            say(f"  plan budget: {self.budget_seconds:.0f} s ({BUDGET_FACTOR:g}x the plain build's {plain:.1f} s)")
        timing = f", {speed_words(candidate)}" if speed is not None else ""
        say(f"  plan {name}: {accuracy:.2f}% ({-drop + 0.0:+.2f} points){timing}, {size / 1e6:.2f} MB")
        return candidate


def kernels_of(settings) -> str:
    """The x86 int8 kernels a candidate is judged (and shipped) with."""
    return settings.get("x86_int8_kernels", EXACT_KERNELS)


def _with_companions(path: Path) -> list[Path]:
    """An OpenVINO IR is the .xml and its .bin."""
    companion = path.with_suffix(".bin")
    return [path, companion] if path.suffix == ".xml" and companion.exists() else [path]
