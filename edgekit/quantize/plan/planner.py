"""``edgekit build --max-drop``: measure candidate int8 plans for the target and ship the best that fits.

Accuracy is judged on images never calibrated on (``evaluation.split_for_planning``); latency is
measured here when the target's architecture is this host's, or on the board itself (``build --host``);
the choice is ``choice.choose``'s. Every candidate, tried or not, goes into the manifest and REPORT.md.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgekit.artifact.manifest import ArtifactManifest, ModelEntry, QuantizationRecord
from edgekit.artifact.plan_records import QuantizationPlan
from edgekit.artifact.records import LogitComparison
from edgekit.core.errors import EdgekitError
from edgekit.core.progress import progress, say, warn
from edgekit.quantize.plan.choice import choose
from edgekit.quantize.plan.evaluation import top1_percent
from edgekit.quantize.plan.request import PlanRequest
from edgekit.quantize.plan.trials import (
    LATENCY_RUNS,
    LATENCY_SECONDS,
    LATENCY_WARMUP,
    Trials,
    kernels_of,
)
from edgekit.runtimes.compare import compare_logits

FINALIST_ROUNDS = 2  # extra timings of the finalists (3 in all, median kept)
ESTIMATE_WORDS = ("millions of Cortex-A72 cycles per inference at 1 thread, from the instructions ONNX Runtime's "
                  "aarch64 build executes under qemu-aarch64 -cpu cortex-a72 (a TCG plugin counts them by class) "
                  "weighted by the core's issue model; memory effects are not modelled: a ranking, not a time")


class PlanningBackend(Protocol):
    """What the planner needs of the target's runtime backend (edgekit.backends.base.RuntimeBackend)."""

    target: Any  # the profile: name, runtime, threads

    def timed_where(self) -> str: ...
    def estimate_unavailable(self) -> str | None: ...
    def estimated_mcycles(self, path: Path, input_shape) -> float: ...
    def fp32_file(self, folder: Path) -> Path: ...
    def logits(self, path: Path, images: np.ndarray, kernels: str | None = None) -> np.ndarray: ...
    def latency(self, path: Path, input_shape, *, runs: int, warmup: int, max_seconds: float,
                kernels: str | None = None) -> float: ...
    def add_candidates(self, fp32_file: Path, scratch: Path, calibration: np.ndarray, trials: Trials, *,
                       labelled: bool) -> None: ...
    def ship(self, folder: Path, source: Path, settings: dict) -> tuple[ModelEntry, dict]: ...


def plan_int8(folder: Path, scratch: Path, manifest: ArtifactManifest, backend: PlanningBackend,
              calibration: np.ndarray, judge: np.ndarray, labels: np.ndarray | None, evaluation: dict,
              request: PlanRequest) -> ArtifactManifest:
    """Measure the candidates, ship the chosen one into ``folder``, and record all of them."""
    scratch.mkdir(parents=True, exist_ok=True)
    fp32_file = backend.fp32_file(folder)
    reference = backend.logits(fp32_file, judge)
    truth = labels if labels is not None else reference
    latency, latency_words, speed_field = _latency_measure(backend, list(manifest.input.shape), request)
    trials = Trials(judge=judge, truth=truth, baseline=top1_percent(reference, truth),
                    logits=lambda path, kernels: backend.logits(path, judge, kernels), latency=latency,
                    max_drop=request.max_drop, speed_field=speed_field, budget_seconds=request.budget_seconds,
                    plain_seconds=request.plain_build_seconds)
    say(f"planning int8 for {backend.target.name}: max drop {request.max_drop:g} points, objective "
        f"{request.objective}, {len(judge)} held-out images; {latency_words}")
    trials.measure("fp32", "fp32", {}, lambda: fp32_file)
    backend.add_candidates(fp32_file, scratch, calibration, trials, labelled=labels is not None)
    if latency is not None and speed_field == "p50_ms" and request.objective == "latency":
        _remeasure_finalists(trials, latency)  # estimates are deterministic: counted once
    if isinstance(latency, _Estimates) and latency.failed is not None:
        latency_words += f"; the estimate failed ({latency.failed}), so plans were chosen by accuracy and size"
    chosen, reason = choose(trials.candidates, request, latency_measured=latency is not None)
    say(f"plan chosen: {chosen} ({reason})")
    plan = QuantizationPlan(
        objective=request.objective, max_drop=request.max_drop,
        metric="top-1 on labelled held-out images (%)" if labels is not None
        else "top-1 agreement with fp32 on held-out calibration images (%)",
        evaluation=evaluation, baseline_accuracy=trials.baseline, latency=latency_words,
        budget_seconds=round(trials.budget_seconds or trials.spent, 1), spent_seconds=round(trials.spent, 1),
        candidates=trials.candidates, chosen=chosen, reason=reason)
    manifest = replace(manifest, quantization_plan=plan)
    if trials.candidate_named(chosen).precision == "fp32":
        return replace(manifest, quantization=QuantizationRecord(skipped=f"the int8 planner chose fp32: {reason}"))
    return _ship(folder, manifest, backend, trials, chosen, reference, len(calibration))


def _remeasure_finalists(trials: Trials, latency) -> None:
    """Time fp32 and the two fastest fitting int8 plans FINALIST_ROUNDS more times, interleaved, and
    keep the median p50 of each: one noisy measurement on a busy machine must not pick the winner."""
    int8 = sorted((c for c in trials.candidates if c.precision == "int8" and trials.fits(c)),
                  key=lambda c: c.p50_ms)[:2]
    if not int8:
        return
    finalists = [trials.candidate_named("fp32"), *int8]
    samples = {c.name: [c.p50_ms] for c in finalists}
    with progress("re-timing the finalists", FINALIST_ROUNDS * len(finalists)) as advance:
        for _ in range(FINALIST_ROUNDS):
            for candidate in finalists:
                samples[candidate.name].append(latency(trials.files[candidate.name], kernels_of(candidate.settings)))
                advance()
    trials.candidates = [replace(c, p50_ms=float(np.median(samples[c.name]))) if c.name in samples else c
                         for c in trials.candidates]


def _latency_measure(backend: PlanningBackend, input_shape: list[int], request: PlanRequest):
    """(speed of a model file, how it was had in words, the PlanCandidate field it fills): timed here or
    on the board; else estimated where the target has a cost model; else None (plans go by size)."""
    batch_one = [1, *input_shape[1:]]
    if request.latency_not_measured is not None:
        unavailable = backend.estimate_unavailable()
        if unavailable is not None:
            return None, (f"latency not measured: {request.latency_not_measured}; no estimate either: "
                          f"{unavailable}; plans are chosen by accuracy and size"), "p50_ms"
        say("  plan: no time can be taken for this target here: ranking plans by estimated Cortex-A72 cycles "
            "(emulated, about 10-30 s per plan)")
        return _Estimates(backend, batch_one), (f"latency not measured ({request.latency_not_measured}); speed "
                                                f"estimated instead: {ESTIMATE_WORDS}"), "est_mcycles"

    def p50(path: Path, kernels: str | None = None) -> float:
        return backend.latency(path, batch_one, runs=LATENCY_RUNS, warmup=LATENCY_WARMUP,
                               max_seconds=LATENCY_SECONDS, kernels=kernels)

    target = backend.target
    return p50, (f"latency measured on {backend.timed_where()}: batch 1, {target.threads} threads, p50 of up to "
                 f"{LATENCY_RUNS} runs in {target.runtime}, fp32 and the two fastest fitting int8 plans "
                 f"timed {FINALIST_ROUNDS + 1}x interleaved (median)"), "p50_ms"


class _Estimates:
    """Estimated Mcycles of each plan; after one failure (a model that crashes under emulation, qemu
    gone) None for every plan, said once: the choice then goes by accuracy and size."""

    def __init__(self, backend: PlanningBackend, input_shape: list[int]) -> None:
        self.backend, self.input_shape, self.failed = backend, input_shape, None

    def __call__(self, path: Path, kernels: str | None = None) -> float | None:
        if self.failed is not None:
            return None
        try:
            return self.backend.estimated_mcycles(path, self.input_shape)
        except (EdgekitError, RuntimeError, OSError) as error:
            self.failed = error.one_line() if isinstance(error, EdgekitError) else " ".join(str(error).split())[:300]
            warn(f"no cycle estimate for {Path(path).name}: {self.failed}; plans are chosen by accuracy and size")
            return None


def _ship(folder: Path, manifest: ArtifactManifest, backend: PlanningBackend, trials: Trials, chosen: str,
          reference: np.ndarray, calibration_images: int) -> ArtifactManifest:
    entry, settings = backend.ship(folder, trials.files[chosen], trials.candidate_named(chosen).settings)
    settings.update(calibration_images=calibration_images, plan=chosen)
    comparison = LogitComparison.of(compare_logits(reference, trials.outputs[chosen], reference_name="the fp32 model",
                                                   candidate_name="the int8 model"),
                                    inputs="held-out images (never calibrated on)")
    return replace(manifest, models=(*manifest.models, entry),
                   quantization=QuantizationRecord(settings, int8_vs_fp32=comparison))
