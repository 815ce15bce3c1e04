"""``edgekit build --max-drop``: measure candidate int8 plans for the target and ship the best that fits.

Accuracy is judged on images never calibrated on (``evaluation.split_for_planning``); latency is
measured here only when the target's architecture is this host's; the choice is
``choice.choose``'s. Every candidate, tried or not, goes into the manifest and REPORT.md.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from edgekit.artifact.manifest import ArtifactManifest, ModelEntry, QuantizationRecord
from edgekit.artifact.plan_records import QuantizationPlan
from edgekit.artifact.records import LogitComparison
from edgekit.core.progress import progress, say
from edgekit.quantize.plan.choice import choose, fits
from edgekit.quantize.plan.evaluation import top1_percent
from edgekit.quantize.plan.trials import LATENCY_RUNS, LATENCY_SECONDS, LATENCY_WARMUP, Trials, kernels_of
from edgekit.runtimes.board_runner import EXACT_KERNELS
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.sessions import openvino_logits, ort_logits
from edgekit.targets.profiles import Target


FINALIST_ROUNDS = 2  # extra timings of the finalists (3 in all, median kept)


@dataclass(frozen=True)
class PlanRequest:
    max_drop: float  # points
    objective: str = "latency"
    budget_seconds: float | None = None  # None: trials.BUDGET_FACTOR x a plain build
    plain_build_seconds: float = 0.0  # export + simplify + parity, already spent


def plan_int8(folder: Path, scratch: Path, manifest: ArtifactManifest, profile: Target, calibration: np.ndarray,
              judge: np.ndarray, labels: np.ndarray | None, evaluation: dict, request: PlanRequest) -> ArtifactManifest:
    """Measure the candidates, ship the chosen one into ``folder``, and record all of them."""
    openvino = profile.quantization.backend == "nncf"
    scratch.mkdir(parents=True, exist_ok=True)
    if openvino:
        fp32_file = folder / "openvino" / "model_fp32.xml"
        run = lambda path, kernels=None: openvino_logits(path, judge, precision=profile.inference_precision)  # noqa: E731
    else:
        fp32_file = folder / "model_fp32.onnx"
        run = lambda path, kernels=EXACT_KERNELS: ort_logits(path, judge, kernels=kernels)  # noqa: E731
    reference = run(fp32_file)
    truth = labels if labels is not None else reference
    latency, latency_words = _latency_measure(profile, list(manifest.input.shape))
    trials = Trials(judge=judge, truth=truth, baseline=top1_percent(reference, truth), logits=run, latency=latency,
                    budget_seconds=request.budget_seconds, plain_seconds=request.plain_build_seconds)
    say(f"planning int8 for {profile.name}: max drop {request.max_drop:g} points, objective {request.objective}, "
        f"{len(judge)} held-out images; {latency_words}")
    trials.measure("fp32", "fp32", {}, lambda: fp32_file, max_drop=request.max_drop)
    _run_candidates(openvino, fp32_file, scratch, calibration, profile, trials, request, labels is not None)
    if latency is not None and request.objective == "latency":
        _remeasure_finalists(trials, latency, request.max_drop)
    chosen, reason = choose(trials.candidates, objective=request.objective, max_drop=request.max_drop,
                            latency_measured=latency is not None)
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
    return _ship(folder, manifest, profile, trials, chosen, reference, len(calibration), openvino)


def _run_candidates(openvino, fp32_file, scratch, calibration, profile, trials, request, labelled) -> None:
    if openvino:
        from edgekit.quantize.plan.openvino_plans import plan_openvino

        plan_openvino(fp32_file, scratch, calibration, profile.quantization, trials, max_drop=request.max_drop,
                      precision=profile.inference_precision, labelled=labelled)
    else:
        from edgekit.quantize.plan.ort_plans import plan_ort

        plan_ort(fp32_file, scratch, calibration, profile.quantization, trials, max_drop=request.max_drop,
                 x86=profile.arch == "x86_64")


def _remeasure_finalists(trials: Trials, latency, max_drop: float) -> None:
    """Time fp32 and the two fastest fitting int8 plans FINALIST_ROUNDS more times, interleaved, and
    keep the median p50 of each: one noisy measurement on a busy machine must not pick the winner."""
    int8 = sorted((c for c in trials.candidates if c.precision == "int8" and fits(c, max_drop)),
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


def _latency_measure(profile: Target, input_shape: list[int]):
    import platform

    from edgekit.targets.isa import emulation

    if not profile.runs_on_this_host:
        return None, (f"latency not measured: this host is {platform.machine()}, the target is {profile.arch}; "
                      "plans are chosen by accuracy and size")
    if (emulated := emulation()) is not None:
        return None, (f"latency not measured: this host's CPU is emulated ({emulated}), so its time says "
                      "nothing about a real CPU's; plans are chosen by accuracy and size")
    from edgekit.benchmark.run import run_worker

    def p50(path: Path, kernels: str = EXACT_KERNELS) -> float:
        result = run_worker({"runtime": profile.runtime, "model_path": str(path), "threads": profile.threads,
                             "runs": LATENCY_RUNS, "warmup": LATENCY_WARMUP, "input_shape": input_shape,
                             "inference_precision": profile.inference_precision, "max_seconds": LATENCY_SECONDS,
                             "x86_int8_kernels": kernels})
        if not result.get("ok"):
            raise RuntimeError(result.get("error", "the model failed to run"))
        return float(result["latency_ms"]["p50"])

    return p50, (f"latency measured on this host: batch 1, {profile.threads} threads, p50 of up to "
                 f"{LATENCY_RUNS} runs in {profile.runtime}, fp32 and the two fastest fitting int8 plans "
                 f"timed {FINALIST_ROUNDS + 1}x interleaved (median)")


def _ship(folder: Path, manifest: ArtifactManifest, profile: Target, trials: Trials, chosen: str,
          reference: np.ndarray, calibration_images: int, openvino: bool) -> ArtifactManifest:
    candidate = trials.candidate_named(chosen)
    source = trials.files[chosen]
    if openvino:
        target = folder / "openvino" / "model_int8.xml"
        shutil.copyfile(source, target)
        shutil.copyfile(source.with_suffix(".bin"), target.with_suffix(".bin"))
        entry = ModelEntry.of("openvino/model_int8.xml", "openvino", "int8", companions=("openvino/model_int8.bin",))
        settings = {**profile.quantization.to_dict(), **candidate.settings, "target_device": "CPU"}
    else:
        target = folder / "model_int8.onnx"
        shutil.copyfile(source, target)
        entry = ModelEntry.of("model_int8.onnx", "onnxruntime", "int8", x86_int8_kernels=kernels_of(candidate.settings))
        settings = {**profile.quantization.to_dict(), "calibration_method": candidate.settings["calibration"],
                    "tool": "onnxruntime.quantization.quantize_static", **candidate.settings}
    settings.update(calibration_images=calibration_images, plan=chosen)
    comparison = LogitComparison.of(compare_logits(reference, trials.outputs[chosen], reference_name="the fp32 model",
                                                   candidate_name="the int8 model"),
                                    inputs="held-out images (never calibrated on)")
    return replace(manifest, models=(*manifest.models, entry),
                   quantization=QuantizationRecord(settings, int8_vs_fp32=comparison))
