"""Benchmark every model of an artifact in every runtime that can run it here."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgekit.artifact.folder import entry_bytes, read_manifest
from edgekit.artifact.manifest import ArtifactManifest
from edgekit.benchmark.markdown import is_bench_markdown, render_bench_markdown
from edgekit.benchmark.plot import is_bench_plot, render_bench_plot
from edgekit.benchmark.remote import measure_on_board
from edgekit.benchmark.rows import BenchRow
from edgekit.benchmark.table import csv_text, is_bench_csv
from edgekit.core.checks import require_int
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import (
    PlannedFile,
    has_schema,
    plan_output_file,
    scratch_folder,
    write_planned_file,
)
from edgekit.core.progress import progress, say
from edgekit.core.versions import BENCH_PACKAGES, installed_versions
from edgekit.data import ImageSet, labelled_images
from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS, EXACT_KERNELS
from edgekit.runtimes.board_runner import host_info as machine_info
from edgekit.runtimes.remote.ssh import Board
from edgekit.runtimes.worker_process import measure_in_worker
from edgekit.targets.isa import describe_host

REPORT_SCHEMA = "edgekit.bench/1"


def measure_models(folder: Path, manifest: ArtifactManifest, *, threads: int, runs: int, warmup: int,
                   data_path: Path | None = None, max_seconds: float | None = None,
                   label: str = "benchmarking") -> list[BenchRow]:
    """One row per model entry of the manifest (in manifest order)."""
    rows = []
    entries = manifest.models
    config = manifest.model.config
    with progress(label, len(entries)) as advance:
        for entry in entries:
            job = {
                "runtime": entry.runtime, "model_path": str(folder / entry.file), "threads": threads,
                "runs": runs, "warmup": warmup, "input_shape": list(manifest.input.shape),
                "inference_precision": manifest.target.inference_precision,
                "model_config": config.to_dict() if config else None,
                "data_path": str(data_path) if data_path else None,
                "x86_int8_kernels": entry.x86_int8_kernels or EXACT_KERNELS,
            }
            if max_seconds:
                job["max_seconds"] = max_seconds
            result = measure_in_worker(job)
            rows.append(BenchRow.measured({"file": entry.file, "runtime": entry.runtime, "precision": entry.precision,
                                           "size_mb": entry_bytes(folder, entry) / 1e6}, result))
            advance()
    return rows


def load_evaluation_images(data: str | Path, manifest: ArtifactManifest, *, limit: int) -> tuple[ImageSet, np.ndarray]:
    """A deterministic sample of a labelled folder, preprocessed as the artifact's manifest says."""
    images = labelled_images(data).subset(limit, seed=0)
    with progress("loading evaluation images", len(images)) as advance:
        array = images.load(manifest.preprocessing, progress=advance)
    return images, array


def output_labels(images: ImageSet, manifest: ArtifactManifest, data: str | Path) -> list[int]:
    """Each image's label as the model's output index, matched by class name when the artifact has them."""
    return labels_as_outputs(images, manifest.classes, data)


def labels_as_outputs(images: ImageSet, classes, data: str | Path) -> list[int]:
    """Each image's label as the index of the model output of that class name (``classes``).

    Folder order is no evidence: a renamed or reordered folder would silently score against the
    wrong outputs. Without recorded names (a bare state_dict, an ONNX input) nothing says which
    folder is which output: an error names ``build --classes``, which records them.
    """
    classes = list(classes or [])
    folders = images.classes
    if classes:
        unknown = [name for name in folders if name not in classes]
        if unknown:
            shown = ", ".join(repr(n) for n in unknown[:5])
            raise EdgekitError(f"evaluation data {data}: class folder(s) {shown} are not classes of this model "
                               f"(it was trained on {', '.join(classes[:12])}{' ...' if len(classes) > 12 else ''})")
        if len(folders) < len(classes):
            say(f"evaluating on {len(folders)} of the model's {len(classes)} classes")
        output_of = {name: classes.index(name) for name in folders}
        return [output_of[folders[label]] for label in images.labels]
    # Guessing that sorted folder i is output i would score a model trained on other folders silently wrong.
    raise EdgekitError(f"the model records no class names (built from a bare state_dict or an ONNX file), so the "
                       f"class folders of {data} cannot be matched to its outputs: name them with "
                       "`edgekit build --classes`")


REPORT_FILES = (  # option, how edgekit recognises its own earlier file there (which a rerun may replace)
    ("--json", has_schema(REPORT_SCHEMA)), ("--csv", is_bench_csv), ("--report", is_bench_markdown),
    ("--plot", is_bench_plot),
)


def plan_reports(folder: Path, data, paths: dict[str, str | Path | None]) -> dict[str, PlannedFile]:
    """Check every report path (``{"--json": path, ...}``) before anything runs: never inside the artifact or
    the evaluation data, never over a user's file, no two options naming one file."""
    forbidden = {"artifact": folder, **({"evaluation data": Path(data)} if data is not None else {})}
    plans = {option: plan_output_file(paths[option], option=option, recognise=recognise, forbidden=forbidden)
             for option, recognise in REPORT_FILES if paths.get(option)}
    seen: dict[Path, str] = {}
    for option, plan in plans.items():
        if plan.path in seen:
            raise EdgekitError(f"{seen[plan.path]} and {option} name the same file {plan.path}")
        seen[plan.path] = option
    if "--plot" in plans and importlib.util.find_spec("matplotlib") is None:
        raise EdgekitError("--plot needs matplotlib, which is not installed (pip install matplotlib)")
    return plans


def recommendation(manifest: ArtifactManifest) -> dict:
    """What the artifact recommends and why, and the int8 planner's choice when it has one."""
    plan = manifest.quantization_plan
    chosen = None
    if plan is not None:
        candidate = next((c for c in plan.candidates if c.name == plan.chosen), None)
        chosen = {"chosen": plan.chosen, "reason": plan.reason, "objective": plan.objective,
                  "max_drop": plan.max_drop, "metric": plan.metric, "baseline_accuracy": plan.baseline_accuracy,
                  "candidates": len(plan.candidates), "candidate": candidate.to_dict() if candidate else None}
    return {"model": manifest.recommended_model, "reason": manifest.recommendation_reason, "plan": chosen}


def report_files(report: dict, plans: dict[str, PlannedFile]) -> list[tuple[PlannedFile, str | bytes]]:
    """Every requested file rendered in memory first, so a renderer that fails leaves none of them written."""
    render = {"--json": lambda: json.dumps(report, indent=2) + "\n", "--csv": lambda: csv_text(report),
              "--report": lambda: render_bench_markdown(report), "--plot": lambda: render_bench_plot(report)}
    return [(plan, render[option]()) for option, plan in plans.items()]


def add_comparisons(rows: list[BenchRow], labels: list[int] | None) -> list[BenchRow]:
    """Accuracy, agreement with the fp32 reference, and int8 speed-up over the same runtime's fp32."""
    ok = [r for r in rows if r.ok]
    reference = next((r for r in ok if r.runtime == "pytorch"), None) or next(
        (r for r in ok if r.precision == "fp32"), None)
    ort_fp32 = next((r for r in ok if r.runtime == "onnxruntime" and r.precision == "fp32"), None)

    def compared(row: BenchRow) -> BenchRow:
        if not row.ok:
            return row
        found = {}
        fp32 = next((r for r in ok if r.runtime == row.runtime and r.precision == "fp32"), None)
        if row.precision != "fp32" and fp32 is not None:
            found["speedup_vs_fp32"] = fp32.latency_ms.p50 / row.latency_ms.p50
        if ort_fp32 is not None and row is not ort_fp32:
            # The common yardstick across runtimes: ONNX Runtime fp32 of the same network.
            found["speedup_vs_ort_fp32"] = ort_fp32.latency_ms.p50 / row.latency_ms.p50
        if row.predictions is not None:
            if labels is not None:
                found["top1"] = float(np.mean(np.asarray(row.predictions) == np.asarray(labels)))
            if reference is not None and reference.predictions is not None:
                found["agreement_with_fp32"] = float(np.mean(np.asarray(row.predictions)
                                                             == np.asarray(reference.predictions)))
                found["reference"] = f"{reference.runtime} {reference.file}"
        return replace(row, **found)

    return [compared(row) for row in rows]


def label_int8_arithmetic(rows: list[BenchRow], host: dict, weight_bits: int | None) -> list[BenchRow]:
    """Say on each ONNX Runtime int8 row whether its numbers are the model's exact int8 arithmetic:
    on an x86 CPU without VNNI (the host's runner then asks for the exact option) 8-bit weights run
    with ORT's defaults, as a plan of ``x86_int8_kernels = ort-default`` asks, may have saturated;
    7-bit weights cannot."""
    saturating_cpu = bool(host.get("ort_session_config"))

    def labelled(row: BenchRow) -> BenchRow:
        if not row.ok or row.runtime != "onnxruntime" or row.precision != "int8":
            return row
        if not saturating_cpu:
            return replace(row, int8_kernels="exact")
        if weight_bits == 7:
            return replace(row, int8_kernels="exact (7-bit)")
        config = row.ort_session_config if row.ort_session_config is not None else host["ort_session_config"]
        return replace(row, int8_kernels="exact (u8u8)" if config.items() >= EXACT_INT8_OPTIONS.items()
                       else "may saturate")

    return [labelled(row) for row in rows]


def bench_artifact(artifact: str | Path, *, data: str | Path | None = None, limit: int = 1000,
                   runs: int = 200, warmup: int = 20, threads: int | None = None,
                   json_path: str | Path | None = None, csv_path: str | Path | None = None,
                   report_path: str | Path | None = None, plot_path: str | Path | None = None,
                   board: Board | None = None) -> dict:
    """Measure here, or on `board` over SSH (ONNX Runtime models only) with the same runner code.

    ``report_path`` gets the results as Markdown (with host, versions and the recommendation),
    ``plot_path`` a PNG of latency against accuracy and size.
    """
    folder = Path(artifact)
    manifest = read_manifest(folder)
    threads = manifest.target.threads if threads is None else threads
    for option, value, low in (("--runs", runs, 1), ("--warmup", warmup, 0), ("--limit", limit, 1),
                               ("--threads", threads, 1)):
        require_int(option, value, low)
    plans = plan_reports(folder, data, {"--json": json_path, "--csv": csv_path, "--report": report_path,
                                        "--plot": plot_path})
    labels = None
    with scratch_folder("bench") as tmp:
        data_path = None
        if data is not None:
            images, array = load_evaluation_images(data, manifest, limit=limit)
            labels = output_labels(images, manifest, data)
            data_path = tmp / "eval.npy"
            np.save(data_path, array)
            say(f"evaluating on {len(images)} labelled images from {data} ({len(images.classes)} classes)")
        if board is None:
            host = describe_host(machine_info())
            rows = measure_models(folder, manifest, threads=threads, runs=runs, warmup=warmup, data_path=data_path)
        else:
            host, answers = measure_on_board(board, folder, manifest, threads=threads, runs=runs, warmup=warmup,
                                             data_path=data_path)
            rows = [BenchRow.measured({key: answer.get(key) for key in ("file", "runtime", "precision", "size_mb")},
                                      answer) for answer in answers]
    rows = add_comparisons(rows, labels)
    rows = label_int8_arithmetic(rows, host, manifest.quantization.settings.get("weight_bits")
                                 if manifest.quantization is not None else None)
    report = {
        "schema": REPORT_SCHEMA, "artifact": str(folder), "model": manifest.model.name,
        "target": manifest.target.name, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": host, "versions": installed_versions(BENCH_PACKAGES),
        "settings": {"threads": threads, "runs": runs, "warmup": warmup, "batch": 1,
                     "eval_images": len(labels) if labels else 0, "data": str(data) if data is not None else None},
        "recommendation": recommendation(manifest),
        "results": [replace(row, predictions=None).to_dict() for row in rows],  # predictions served the comparisons
    }
    for plan, content in report_files(report, plans):
        write_planned_file(plan, content)
    return report
