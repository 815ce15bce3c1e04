"""``edgekit build``: model -> fp32 ONNX (export, simplify, parity) -> int8 for a target -> artifact."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgekit.artifact.folder import artifact_owner, entry_bytes, write_manifest
from edgekit.artifact.manifest import (
    ArtifactManifest,
    CalibrationRecord,
    InputSpec,
    Int8Tradeoff,
    LatencyCheck,
    ModelEntry,
    ModelInfo,
    QuantizationRecord,
    TargetRecord,
)
from edgekit.artifact.records import ExportRecord, LogitComparison, OutputSpec, RewriteRecord
from edgekit.backends.base import FP32_ONNX, RuntimeBackend
from edgekit.benchmark.run import labels_as_outputs
from edgekit.builder import export, simplify
from edgekit.builder.board import timing_on_board
from edgekit.builder.export import OPSETS
from edgekit.builder.report import write_report
from edgekit.builder.source import (
    SourceModel,
    artifact_stem,
    class_names,
    model_file,
    resolve_model,
    with_class_names,
)
from edgekit.core.checks import require_int, require_number
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import atomic_folder, plan_output_folder, scratch_folder
from edgekit.core.progress import progress, say, warn
from edgekit.core.versions import installed_versions
from edgekit.data import find_images
from edgekit.models import save_checkpoint
from edgekit.quantize.plan.choice import OBJECTIVES
from edgekit.quantize.plan.evaluation import PlanImages, split_for_planning
from edgekit.quantize.plan.planner import plan_int8
from edgekit.quantize.plan.request import PlanRequest
from edgekit.quantize.plan.table import print_plan_table
from edgekit.rewrite import rewrite_onnx
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.remote.ssh import Board
from edgekit.runtimes.sessions import ort_logits
from edgekit.targets.isa import build_host_record, why_latency_not_measured_here
from edgekit.targets.profiles import Target, load_target

PARITY_SAMPLES = 16
# Below this top-1 agreement with fp32 (on the calibration images) int8 is not recommended.
MIN_INT8_AGREEMENT = 0.9


@dataclass(frozen=True)
class BuildOptions:
    calib: str | Path | None = None
    calib_size: int = 300
    exporter: str = "legacy"
    opset: int | None = None
    calibration_method: str | None = None  # overrides the target's
    parity_tolerance: float = 1e-4
    fp32_only: bool = False
    max_drop: float | None = None  # points of top-1; set: plan int8 (edgekit.quantize.plan) instead of the fixed recipe
    val: str | Path | None = None  # labelled held-out images for the planner
    val_size: int = 2000
    objective: str = "latency"
    plan_budget: float | None = None  # seconds
    check_latency: bool = True
    rewrite: bool = True  # the exact graph rewrites of edgekit.rewrite
    force: bool = False


def build_artifact(model: str, target: str, out: str | Path | None = None, *, weights=None,
                   pretrained: str | None = None, num_classes: int | None = None, in_channels: int | None = None, input_size: int | None = None,
                   mean=None, std=None, classes=None, board: Board | None = None,
                   options: BuildOptions = BuildOptions()) -> Path:
    """Build the artifact folder and return its path. Nothing is left at ``out`` on failure.
    ``classes``: names of the outputs, in order (``source.class_names``), for weights that record none.
    ``board``: time models on this board over SSH (``build --host``) instead of this host."""
    started = time.monotonic()
    profile = load_target(target)
    backend = profile.backend()  # chosen once: every runtime-specific step below asks it
    _check_options(options, backend)
    names = class_names(classes)
    with timing_on_board(board, backend) as board_host:
        return _build(model, out, backend, options, names, board_host, started, weights=weights, pretrained=pretrained,
                      num_classes=num_classes, in_channels=in_channels, input_size=input_size, mean=mean, std=std)


def _build(model, out, backend: RuntimeBackend, options: BuildOptions, names, board_host, started, *, weights,
           pretrained, num_classes, in_channels, input_size, mean, std) -> Path:
    profile, calib = backend.target, options.calib if not options.fp32_only else None
    planned = None
    if calib is not None:
        available = find_images(calib)  # a missing or empty folder is reported before any work
        if options.max_drop is not None:
            planned = split_for_planning(available, calib_source=calib, calib_size=options.calib_size,
                                         val=options.val, val_size=options.val_size)
    out = Path(out) if out is not None else Path("artifacts") / f"{artifact_stem(model)}-{profile.name}"
    plan = plan_output_folder(out, force=options.force, owner=artifact_owner, inputs={
        "calibration folder": calib, "validation folder": options.val, "weights file": weights,
        "model file": model_file(model), "target profile": profile.source})
    source = resolve_model(model, weights=weights, pretrained=pretrained, num_classes=num_classes,
                           in_channels=in_channels, input_size=input_size, mean=mean, std=std)
    source = with_class_names(source, names, weights=weights)
    judging = _judging_images(source, planned) if planned is not None else None
    calibration, calib_record = _calibration_images(source, available, options, planned) if calib is not None \
        else (None, None)
    say(f"building {source.name} for target {profile.name} -> {out}")
    with atomic_folder(plan) as staging, scratch_folder("build") as scratch:
        manifest = _build_into(staging, scratch, source, backend, calibration, calib_record, options,
                               judging=judging, started=started, board_host=board_host)
        write_report(staging, manifest)
        write_manifest(staging, manifest)
    if manifest.quantization_plan is not None:
        print_plan_table(manifest.quantization_plan)
    say(f"artifact written: {out}")
    return out


def _check_options(options: BuildOptions, backend: RuntimeBackend) -> None:
    """The Python API's own boundary (the CLI's Click types check the same before this)."""
    if options.calib is None and not options.fp32_only:
        raise EdgekitError("int8 quantization needs calibration images: pass --calib DIR (or --fp32-only)")
    offered, target = backend.calibration_methods, backend.target
    if options.calibration_method and not offered:
        raise EdgekitError(f"--calib-method does not apply to target {target.name}: it quantizes with "
                           f"{backend.quantizer}, which has no calibration methods to choose")
    if options.calibration_method not in (None, *offered):
        raise EdgekitError(f"--calib-method must be one of {', '.join(offered)}")
    require_int("--calib-size", options.calib_size, 1)
    if options.max_drop is None:
        for given, option in ((options.val, "--val"), (options.plan_budget, "--plan-budget")):
            if given is not None:
                raise EdgekitError(f"{option} applies to int8 planning: pass --max-drop POINTS too")
    else:
        if options.fp32_only:
            raise EdgekitError("--max-drop plans int8, --fp32-only builds none: choose one")
        require_number("--max-drop", options.max_drop, 0, 100)
        require_int("--val-size", options.val_size, 1)
        if options.objective not in OBJECTIVES:
            raise EdgekitError(f"--objective must be one of {', '.join(OBJECTIVES)}")
        if options.plan_budget is not None:
            require_number("--plan-budget", options.plan_budget, 0, 86400, low_open=True)
    require_number("--parity-tol", options.parity_tolerance, 0, 1, low_open=True)
    if options.exporter not in OPSETS:
        raise EdgekitError(f"unknown exporter {options.exporter!r}; choose one of {', '.join(OPSETS)}")
    if options.opset is not None and options.opset not in OPSETS[options.exporter]:
        allowed = OPSETS[options.exporter]
        raise EdgekitError(f"--opset {options.opset} is not available with the {options.exporter} exporter "
                           f"(choose {allowed.start}..{allowed.stop - 1})")


def _judging_images(source: SourceModel, planned: PlanImages) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """The planner's held-out images and their labels as output indices (None: judged by agreement)."""
    labels = None
    if planned.labelled:
        labels = np.asarray(labels_as_outputs(planned.judge, source.classes, planned.record["source"]))
    with progress("loading held-out images for the int8 planner", len(planned.judge)) as advance:
        images = planned.judge.load(source.preprocessing, progress=advance)
    return images, labels, planned.record


def _calibration_images(source: SourceModel, available, options: BuildOptions,
                        planned: PlanImages | None) -> tuple[np.ndarray, CalibrationRecord]:
    chosen = planned.calibrate if planned is not None else available.subset(options.calib_size, seed=0)
    with progress("loading calibration images", len(chosen)) as advance:
        images = chosen.load(source.preprocessing, progress=advance)
    if planned is not None:
        selection = (f"random sample, seed 0, of the images not held out for judging ({planned.record['selection']})"
                     if not planned.labelled else "random sample, seed 0, of the images not also in --val")
    else:
        selection = "all" if len(chosen) == len(available) else "random sample, seed 0, of the sorted file list"
    record = CalibrationRecord(
        source=str(options.calib), images=len(chosen), available=len(available),
        selection=selection,
        sha256=chosen.content_sha256(), non_image_files_ignored=available.skipped_non_images)
    if available.skipped_non_images:
        warn(f"ignored {available.skipped_non_images} non-image files in {options.calib}")
    return images, record


def _build_into(folder: Path, scratch: Path, source: SourceModel, backend: RuntimeBackend,
                calibration: np.ndarray | None,
                calib_record: CalibrationRecord | None, options: BuildOptions, *, judging=None,
                started: float | None = None, board_host: dict | None = None) -> ArtifactManifest:
    profile = backend.target
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if calibration is not None:
        check_inputs, check_source = calibration[:PARITY_SAMPLES], "calibration images"
    else:
        rng = np.random.default_rng(0)
        check_inputs = rng.standard_normal((4, *source.preprocessing.input_shape[1:]), dtype=np.float32)
        check_source = "random normal inputs (no calibration images given)"

    fp32_onnx = folder / FP32_ONNX
    models = []
    if source.kind == "registry":
        raw = scratch / "exported.onnx"
        with progress("exporting to ONNX", 1) as advance:
            exported = export.export_onnx(source.module, check_inputs, raw, exporter=options.exporter,
                                          opset=options.opset)
            advance()
        simplified = simplify.simplify_onnx(raw, scratch / "simplified.onnx")
        rewritten = _rewrite(scratch / "simplified.onnx", fp32_onnx, check_inputs, scratch, backend, options)
        exported = replace(exported, parity=export.check_parity(
            source.module, fp32_onnx, check_inputs, tolerance=options.parity_tolerance, input_source=check_source))
        extra = {"pruned_shapes": source.pruned_shapes} if source.pruned_shapes else {}
        save_checkpoint(folder / "model_fp32.pt", source.config, source.module.state_dict(), **extra)
        models.append(ModelEntry.of("model_fp32.pt", "pytorch", "fp32", role="reference"))
    else:
        exported = ExportRecord(exporter=None, note=f"ONNX input {source.onnx_path} used as given")
        simplified = simplify.simplify_onnx(source.onnx_path, scratch / "simplified.onnx")
        rewritten = _rewrite(scratch / "simplified.onnx", fp32_onnx, check_inputs, scratch, backend, options)
        parity = compare_logits(ort_logits(source.onnx_path, check_inputs), ort_logits(fp32_onnx, check_inputs),
                                       reference_name=f"the input model {source.onnx_path.name}",
                                       candidate_name="the simplified (and rewritten) model")
        exported = replace(exported, parity=LogitComparison.of(
            parity, reference="the input ONNX model in ONNX Runtime", inputs=check_source))
    models.append(ModelEntry.of(FP32_ONNX, "onnxruntime", "fp32"))  # ONNX: every backend's starting point
    say(f"fp32 ONNX: {simplified.nodes_before} -> {simplified.nodes_after} nodes; parity max normalised diff "
        f"{exported.parity.max_normalised_diff:.1e}")
    manifest = ArtifactManifest(
        created=created,
        model=ModelInfo(source.name, source.kind, source.config, source.weights),
        input=InputSpec(tuple(source.preprocessing.input_shape), name=export.INPUT_NAME, layout="NCHW",
                        dtype="float32", dynamic_batch=source.kind == "registry"),
        output=OutputSpec(name=export.OUTPUT_NAME, meaning="logits (no softmax)"),
        # Output i is classes[i]: bench maps evaluation folders to outputs by these names.
        classes=source.classes, preprocessing=source.preprocessing, target=TargetRecord.from_profile(profile),
        versions=installed_versions(), models=models, export=exported, simplify=simplified, rewrite=rewritten)

    manifest = backend.prepare(folder, manifest)
    if calibration is None:
        manifest = replace(manifest, quantization=QuantizationRecord(skipped="--fp32-only: no int8 model built"))
    elif judging is not None:
        manifest = _plan_int8(folder, scratch, manifest, backend, calibration, judging, options, started)
    else:
        manifest = backend.quantize(folder, manifest, calibration, options.calibration_method)
    if calibration is not None:
        manifest = replace(manifest, quantization=replace(manifest.quantization, calibration=calib_record))
    manifest = replace(manifest, latency_check=_latency_check(folder, manifest, backend, options, board_host))
    tradeoff = _int8_tradeoff(folder, manifest)
    if tradeoff is not None:
        manifest = replace(manifest, int8_tradeoff=tradeoff)
        say(f"{profile.name} has no int8 dot-product: int8 is {tradeoff.size_ratio:.1f}x smaller but may be no "
            f"faster than fp32; {tradeoff.fp32_model} ships beside it (see REPORT.md)")
    model, reason = _recommend(manifest.models_for(profile.runtime), manifest.quantization, manifest.latency_check,
                               manifest.quantization_plan)
    return replace(manifest, recommended_model=model, recommendation_reason=reason,
                   build_host=_build_host(manifest, profile))


def _rewrite(simplified: Path, fp32_onnx: Path, check_inputs: np.ndarray, scratch: Path, backend: RuntimeBackend,
             options: BuildOptions) -> RewriteRecord | None:
    """The exact graph rewrites (edgekit.rewrite) on the simplified fp32 ONNX, their gains timed as the
    build's latency check times (fp32, the target's threads) where it can."""
    if not options.rewrite:
        shutil.copyfile(simplified, fp32_onnx)
        return None
    why = _why_not_timed(backend, options, on_board=backend.board is not None)
    if why is None and backend.runtime != "onnxruntime":
        why = f"the {backend.runtime} target's gains are not timed (ONNX Runtime only)"
    if why is not None:
        return rewrite_onnx(simplified, fp32_onnx, check_inputs, scratch=scratch, timing=f"not timed: {why}")
    shape = (1, *check_inputs.shape[1:])

    def time_fp32(path: Path) -> float:
        return backend.latency(path, shape, runs=30, warmup=5, max_seconds=5)

    timing = f"fp32 p50 on {backend.timed_where()}, batch 1, {backend.target.threads} threads"
    return rewrite_onnx(simplified, fp32_onnx, check_inputs, scratch=scratch, time_fp32=time_fp32, timing=timing)


def _build_host(manifest: ArtifactManifest, profile: Target) -> dict:
    """Where the parity, int8 and latency numbers above were measured, and with which int8 kernels."""
    int8 = next((m for m in manifest.models_for(profile.runtime) if m.precision == "int8"), None)
    settings = manifest.quantization.settings if manifest.quantization is not None else {}
    return build_host_record(runtime=profile.runtime, kernels=int8.x86_int8_kernels if int8 else None,
                             weight_bits=settings.get("weight_bits"))


def _plan_int8(folder, scratch, manifest: ArtifactManifest, backend, calibration, judging, options,
               started) -> ArtifactManifest:
    images, labels, evaluation = judging
    request = PlanRequest(max_drop=options.max_drop, objective=options.objective, budget_seconds=options.plan_budget,
                          plain_build_seconds=time.monotonic() - started if started is not None else 0.0,
                          latency_not_measured=None if backend.board is not None
                          else why_latency_not_measured_here(backend.target))
    return plan_int8(folder, scratch / "plans", manifest, backend, calibration, images, labels, evaluation, request)


def _why_not_timed(backend: RuntimeBackend, options: BuildOptions, *, on_board: bool) -> str | None:
    """Why this build times nothing (the latency check, the rewrites' gains), or None where it can."""
    if not options.check_latency:
        return "--no-latency-check"
    return None if on_board else why_latency_not_measured_here(backend.target)


def _latency_check(folder: Path, manifest: ArtifactManifest, backend: RuntimeBackend, options: BuildOptions,
                   board_host: dict | None) -> LatencyCheck:
    """A short measured fp32 vs int8 comparison of the target runtime's models, on the board when the
    build has one (--host), else here when this host can stand for the target."""
    profile = backend.target
    if (why := _why_not_timed(backend, options, on_board=board_host is not None)) is not None:
        disabled = not options.check_latency
        return LatencyCheck(measured=False, reason="disabled (--no-latency-check)" if disabled else
                            f"{why}: measure on the target itself (build or bench --host)")
    entries = manifest.models_for(profile.runtime)
    timings = {}
    with progress(f"latency check on {backend.timed_where()}", len(entries)) as advance:
        for entry in entries:
            try:
                timings[entry.precision] = backend.latency(folder / entry.file, [1, *manifest.input.shape[1:]],
                                                           runs=100, warmup=10, max_seconds=20,
                                                           kernels=entry.x86_int8_kernels)
            except (RuntimeError, EdgekitError) as error:
                raise EdgekitError(f"a built model failed to run in {profile.runtime}: {entry.file}: "
                                   f"{error}") from None
            advance()
    return LatencyCheck(measured=True, runtime=profile.runtime, threads=profile.threads, batch=1, p50_ms=timings,
                        int8_speedup=timings["fp32"] / timings["int8"] if "int8" in timings else None,
                        board=board_host)


def _int8_tradeoff(folder: Path, manifest: ArtifactManifest) -> Int8Tradeoff | None:
    """What int8 buys and costs on a CPU without int8 dot-product instructions (e.g. the Pi 4's A72).

    Such CPUs widen int8 products to 16/32-bit lanes, so int8 can run no faster, or slower, than
    fp32; the file size and the memory the weights occupy still shrink about 4x. None unless the
    target says it lacks int8 dot-product and an int8 model was built.
    """
    target = manifest.target
    models = {m.precision: m for m in manifest.models_for(target.runtime)}
    if target.int8_dot_product is not False or "int8" not in models:
        return None
    fp32_bytes, int8_bytes = entry_bytes(folder, models["fp32"]), entry_bytes(folder, models["int8"])
    check = manifest.latency_check
    return Int8Tradeoff(
        fp32_model=models["fp32"].file, int8_model=models["int8"].file, fp32_bytes=fp32_bytes, int8_bytes=int8_bytes,
        size_ratio=fp32_bytes / int8_bytes,
        latency=(f"int8 {check.int8_speedup:.2f}x fp32 on the build host" if check.measured
                 else f"not measured: {check.reason if check.reason is not None else 'unknown'}"))


def _recommend(entries: tuple[ModelEntry, ...], quantization: QuantizationRecord,
               check: LatencyCheck, plan=None) -> tuple[str, str]:
    """(model to deploy, why) among the target runtime's ``entries``: int8 unless it disagrees with
    fp32 or was measured slower than fp32."""
    by_precision = {m.precision: m.file for m in entries}
    if plan is not None:
        return by_precision["int8" if "int8" in by_precision else "fp32"], f"int8 planner: {plan.reason}"
    if "int8" not in by_precision:
        return by_precision["fp32"], "no int8 model was built"
    agreement = quantization.int8_vs_fp32.top1_agreement
    if agreement < MIN_INT8_AGREEMENT:
        warn(f"int8 agrees with fp32 on only {100 * agreement:.1f}% of the calibration images "
             f"(< {100 * MIN_INT8_AGREEMENT:.0f}%): the manifest recommends the fp32 model; --max-drop POINTS "
             "measures other int8 plans against held-out images")
        return by_precision["fp32"], (f"int8 top-1 agrees with fp32 on {100 * agreement:.1f}% of calibration "
                                      f"images, below {100 * MIN_INT8_AGREEMENT:.0f}%")
    speedup = check.int8_speedup if check.int8_speedup is not None else 1.0
    if check.measured and speedup < 1.0:
        warn(f"int8 is SLOWER than fp32 here ({check.p50_ms['int8']:.2f} ms vs {check.p50_ms['fp32']:.2f} ms "
             f"p50): the manifest recommends the fp32 model; --max-drop POINTS measures other int8 plans")
        return by_precision["fp32"], f"int8 measured slower than fp32 on this host ({speedup:.2f}x)"
    if check.measured:
        return by_precision["int8"], f"int8 is {check.int8_speedup:.2f}x faster than fp32 here"
    return by_precision["int8"], "int8 agrees with fp32; latency not measured on this host"
