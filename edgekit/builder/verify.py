"""Check that an artifact's ONNX Runtime and OpenVINO models give the same answers on aarch64 as here.

The aarch64 side is the same releases of ONNX Runtime and OpenVINO under qemu user-mode emulation
of a Raspberry Pi 4's Cortex-A72 (edgekit.runtimes.emulation): a different instruction set and
different kernels, on the same inputs. ORT's int8 QDQ models are expected to be bit-exact, fp32
within ~1e-6 relative. OpenVINO's int8 kernels differ by design between x86 (VNNI) and ARM, so its
int8 IR is judged by top-1 agreement alone, its difference reported. A model that the emulated
runtime refuses or runs wrongly (e.g. no output rows) is a failed row, with its one-line reason.
Emulation says nothing about speed, so no timing is reported.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from edgekit.artifact.folder import read_manifest
from edgekit.artifact.manifest import ArtifactManifest
from edgekit.benchmark.run import load_evaluation_images
from edgekit.core.checks import require_int, require_number
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import (
    has_schema,
    plan_output_file,
    scratch_folder,
    write_planned_file,
)
from edgekit.core.progress import say, warn
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.emulation import INFER_DRIVER, check_arch, ensure_arm64_python
from edgekit.runtimes.sessions import openvino_logits, ort_logits

# Per sample, at most ~2 s emulated for the models edgekit builds; generous for big inputs.
RUNNER_TIMEOUT_S = 120
RUNNER_TIMEOUT_PER_SAMPLE_S = 20
REPORT_SCHEMA = "edgekit.verify/1"
RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
VERIFIED_RUNTIMES = tuple(RUNTIME_NAMES)


def compare_emulated_logits(reference: np.ndarray, other: np.ndarray) -> dict:
    """The build's parity measure (max |diff|, normalised by max |reference logit|, top-1 agreement)
    plus bit-exactness."""
    if reference.shape != other.shape:
        raise EdgekitError(f"emulated outputs have shape {other.shape}, expected {reference.shape}")
    measured = compare_logits(reference, other)
    return {"max_abs_diff": measured["max_abs_diff"], "max_norm_diff": measured["max_normalised_diff"],
            "top1_agreement": measured["top1_agreement"], "bit_exact": bool(np.array_equal(reference, other))}


def verify_inputs(manifest: ArtifactManifest, *, data: str | Path | None, limit: int, samples: int) -> tuple[np.ndarray, str]:
    """Preprocessed images from ``data``, else seeded standard-normal tensors of the input shape."""
    if data is not None:
        images, array = load_evaluation_images(data, manifest, limit=limit)
        return array, f"{len(images)} images from {data}"
    shape = tuple(manifest.input.shape[1:])
    array = np.random.default_rng(0).standard_normal((samples, *shape), dtype=np.float32)
    return array, f"{samples} seeded standard-normal inputs"


def host_logits(path: Path, inputs: np.ndarray, *, runtime: str, threads: int,
                precision: str | None = None) -> np.ndarray:
    """Batch 1, as the board runner does: a batch changes GEMM blocking and so fp32 rounding."""
    if runtime == "openvino":
        return openvino_logits(path, inputs, precision=precision).astype(np.float32)
    return ort_logits(path, inputs, batch_size=1, threads=threads).astype(np.float32)


def judged_by_top1_only(runtime: str, precision: str) -> bool:
    """OpenVINO's int8 kernels are not the same arithmetic on x86 and ARM; ORT's QDQ ones are."""
    return runtime == "openvino" and precision == "int8"


def verify_artifact(artifact: str | Path, *, arch: str = "arm64", data: str | Path | None = None,
                    limit: int = 32, samples: int = 16, tol: float = 1e-4, threads: int = 1,
                    json_path: str | Path | None = None, rebuild_cache: bool = False) -> dict:
    """Run every ONNX Runtime and OpenVINO model here and emulated; the report's "passed" says if all agree."""
    check_arch(arch)
    require_int("--limit", limit, 1)
    require_int("--samples", samples, 1, 100_000)
    require_int("--threads", threads, 0, 1024)
    require_number("--tol", tol, 0, 1, low_open=True)
    folder = Path(artifact).resolve()
    manifest = read_manifest(folder)
    forbidden = {"artifact": folder, **({"data folder": Path(data)} if data is not None else {})}
    json_plan = plan_output_file(json_path, option="--json", recognise=has_schema(REPORT_SCHEMA),
                                 forbidden=forbidden) if json_path else None
    entries = [entry for runtime in VERIFIED_RUNTIMES for entry in manifest.models_for(runtime)]
    if not entries:
        runtimes = sorted({e.runtime for e in manifest.models})
        raise EdgekitError(f"{folder} has no ONNX Runtime or OpenVINO models to verify (it has {', '.join(runtimes)})")
    inputs, described = verify_inputs(manifest, data=data, limit=limit, samples=samples)
    python = ensure_arm64_python(rebuild=rebuild_cache)
    stamp = python.stamp()
    host = platform.machine()
    names = " and ".join(dict.fromkeys(RUNTIME_NAMES[entry.runtime] for entry in entries))
    say(f"comparing {names} on this {host} machine with emulated aarch64 ({stamp['qemu_cpu']}) on {described}")
    timeout_s = RUNNER_TIMEOUT_S + RUNNER_TIMEOUT_PER_SAMPLE_S * len(inputs)
    rows = []
    # Status lines rather than a progress bar: its clock would show emulated timings.
    with scratch_folder("verify") as tmp:
        inputs_path = tmp / "inputs.npy"
        np.save(inputs_path, inputs)
        for index, entry in enumerate(entries, 1):
            say(f"running {entry.file} ({index}/{len(entries)}) under emulation")
            rows.append(_verify_one(python, folder / entry.file, entry, inputs, inputs_path, tmp, manifest,
                                    threads=threads, tol=tol, timeout_s=timeout_s, host=host))
    board = {k: v for k, v in stamp["board"].items() if k not in ("logical_cores", "kernel")}
    report = {
        "schema": REPORT_SCHEMA, "artifact": str(folder), "model": manifest.model.name,
        "target": manifest.target.name,
        "host": {"arch": host, **stamp["versions"]},
        "emulated": {"cpu": stamp["qemu_cpu"], "emulator": "qemu user-mode", **board},
        "inputs": described, "samples": len(inputs), "threads": threads, "tolerance": tol,
        "results": rows, "passed": all(row["passed"] for row in rows),
    }
    if json_plan:
        write_planned_file(json_plan, json.dumps(report, indent=2) + "\n")
    return report


def _verify_one(python, model: Path, entry, inputs: np.ndarray, inputs_path: Path, tmp: Path,
                manifest: ArtifactManifest, *, threads: int, tol: float, timeout_s: float, host: str) -> dict:
    precision_hint = manifest.target.inference_precision if entry.runtime == "openvino" else None
    row = {"file": entry.file, "runtime": entry.runtime, "precision": entry.precision}
    outputs_path = tmp / f"{model.stem}.{entry.runtime}.out.npy"
    try:
        python.run_script(INFER_DRIVER, str(model), str(inputs_path), str(outputs_path), "--threads", str(threads),
                          "--runtime", entry.runtime, *(("--precision", precision_hint) if precision_hint else ()),
                          timeout_s=timeout_s, what=f"run of {entry.file}")
    except EdgekitError as error:  # the emulated runtime refused or mis-ran it: a finding, not a crash of verify
        message = error.one_line()
        return {**row, "error": message.split(": error: infer: ", 1)[-1], "passed": False}
    reference = host_logits(model, inputs, runtime=entry.runtime, threads=threads, precision=precision_hint)
    result = compare_emulated_logits(reference, np.load(outputs_path))
    within = judged_by_top1_only(entry.runtime, entry.precision) or result["max_norm_diff"] <= tol
    if entry.runtime == "onnxruntime" and entry.precision == "int8" and not result["bit_exact"]:
        warn(f"{entry.file}: int8 outputs differ between {host} and aarch64 (max |diff| "
             f"{result['max_abs_diff']:.3g}) where int8 QDQ is normally bit-exact")
    return {**row, **result, "passed": result["top1_agreement"] == 1.0 and within}


def failure_message(report: dict) -> str:
    failed = [f"{row['file']} ({row['error']})" if "error" in row else
              f"{row['file']} (top-1 agreement {100 * row['top1_agreement']:.1f}%, "
              f"max normalised diff {row['max_norm_diff']:.3g})" for row in report["results"] if not row["passed"]]
    return (f"emulated aarch64 outputs differ from {report['host']['arch']} beyond --tol {report['tolerance']:g} "
            f"or in top-1: {'; '.join(failed)}")
