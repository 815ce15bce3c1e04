"""Top-1 of edgekit's int8 CPU models on each of ONNX Runtime's three x86 int8 arithmetic paths.

ORT picks its int8 kernels from CPUID. With AVX-512 VNNI (this host) u8 x s8 is exact. Without VNNI
(AVX2-only CPUs) ORT's default u8 x s8 kernels add int16 pairs that SATURATE; the session option
``session.x64quantprecision=1`` makes ORT rewrite s8 weights to u8 and use exact u8 x u8 kernels;
weights within [-64, 64] (7-bit, ORT's ``reduce_range``) are never rewritten and cannot saturate.

For each trained reference checkpoint (benchmarks/results/train_ref/<run>/best.pt) this uses the
run's own CIFAR-10 split (``_cifar_split``: 300 calibration images from its training part, the
evaluation images from its held-out part), builds the target ``cpu`` artifact with edgekit's
fixed recipe (8-bit weights), quantizes the artifact's fp32 ONNX again with ``reduce_range=True``
(7-bit weights, same calibration images), and scores, on the same evaluation images:
  - natively (VNNI): fp32, int8 8-bit (ORT defaults, exact here), 8-bit with the exact option, 7-bit;
  - on an emulated AVX2 CPU (``qemu-x86_64-static -cpu Haswell``, this Python and ORT, asserting
    numpy sees no AVX512VNNI): the same four paths, where 8-bit with ORT defaults saturates.
Every path is one ORT session per model (2 intra-op threads, batch 8 unless the model's batch is
fixed). It records top-1, top-1 agreement with the native fp32 model, and whether emulated outputs
equal the native ones bit for bit; then native batch-1 p50 latency (interleaved runs, ratios vs
fp32). Emulated wall times are meaningless and are never reported.

    cd /work/main && PYTHONPATH=. .venv/bin/python benchmarks/x86_int8_paths.py \
        [--models mobilenet_v2_cifar,keffnet_b0_16ch_cycle2] [--eval-images 2000] [--skip-emulated]

The emulated part is slow (fp32 most: MLAS's AVX2 sgemm under TCG), so the recorded results used
--eval-images 1000: 41 minutes in all on a loaded 2-core host, 2000 would take about 80.
Writes benchmarks/results/x86_int8_paths/<run>.json, summary.json and summary.csv.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from _cifar_split import split_folders, training_run  # noqa: E402  (benchmarks/ is on sys.path as a script)
from _results import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXACT_OPTION = {"session.x64quantprecision": "1"}
# name: (model file, weight bits, session config). The same four paths run natively and emulated.
PATHS = {"fp32": ("model_fp32.onnx", None, {}),
         "int8_8bit": ("model_int8.onnx", 8, {}),
         "int8_8bit_exact_option": ("model_int8.onnx", 8, EXACT_OPTION),
         "int8_7bit": ("model_int8_7bit.onnx", 7, {})}
# The native output each path should reproduce bit for bit: the same model file's, where the
# saturating and exact-option 8-bit paths are both judged against native 8-bit (exact on VNNI).
NATIVE_REFERENCE = {"fp32": "fp32", "int8_8bit": "int8_8bit", "int8_8bit_exact_option": "int8_8bit",
                    "int8_7bit": "int8_7bit"}
# Self-contained (numpy + onnxruntime only) so that it runs whole inside the emulator: a child
# process of an emulated one would run natively. Run natively too, so both sides share this code.
INNER = r'''
import json, sys, time
import numpy as np, onnxruntime as ort
from numpy._core._multiarray_umath import __cpu_features__ as cpu
spec = json.loads(sys.argv[1])
if spec["expect_vnni"] is not None:
    assert bool(cpu.get("AVX512VNNI")) is spec["expect_vnni"], f"AVX512VNNI is {cpu.get('AVX512VNNI')}"
images = np.load(spec["images"])
for name, (path, config) in spec["paths"].items():
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = spec["threads"], 1
    options.log_severity_level = 3
    for key, value in config.items():
        options.add_session_config_entry(key, value)
    started = time.monotonic()
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    loaded = time.monotonic()
    feed = session.get_inputs()[0]
    batch = feed.shape[0] if isinstance(feed.shape[0], int) else spec["batch"]
    logits = [session.run(None, {feed.name: images[s:s + batch]})[0] for s in range(0, len(images), batch)]
    np.save(f"{spec['out']}/{name}.npy", np.concatenate(logits))
    print(f"  {spec['label']} {name}: load {loaded - started:.0f} s, {len(images)} images {time.monotonic() - loaded:.0f} s",
          file=sys.stderr, flush=True)
host = {"cpuid": {k: bool(cpu.get(k)) for k in ("AVX2", "AVX512F", "AVX512VNNI")},
        "numpy": np.__version__, "onnxruntime": ort.__version__}
open(f"{spec['out']}/host.json", "w").write(json.dumps(host))
'''


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def weight_range(path: Path) -> dict:
    """The int8 weights (initializers read by DequantizeLinear): extremes and edgekit's bit count."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(path)
    inits = {t.name: t for t in model.graph.initializer}
    weights = [numpy_helper.to_array(inits[n.input[0]]) for n in model.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits
               and inits[n.input[0]].data_type == TensorProto.INT8]
    low, high = int(min(w.min() for w in weights)), int(max(w.max() for w in weights))
    found = {"int8_weights": len(weights), "min": low, "max": high, "fits_7_bits": low >= -64 and high <= 64}
    try:  # edgekit's own check, where this version of the package has it
        from edgekit.quantize.int8_graph import int8_weight_bits
        found["edgekit_int8_weight_bits"] = int8_weight_bits(model)
    except ImportError:
        pass
    return found


def build_models(run: Path, folders: dict, artifact: Path) -> tuple:
    """edgekit's target-cpu artifact (fp32 + fixed 8-bit recipe) plus a 7-bit int8 of its fp32 ONNX."""
    from edgekit.artifact.folder import read_manifest
    from edgekit.data import find_images
    from edgekit.models.checkpoint import read_checkpoint
    from edgekit.builder.pipeline import BuildOptions, build_artifact
    from edgekit.quantize.ort import quantize_onnx_static
    from edgekit.targets.profiles import load_target

    name = read_checkpoint(run / "best.pt").config.name
    say(f"{run.name}: building {name} for target cpu")
    build_artifact(name, "cpu", artifact, weights=run / "best.pt",
                   options=BuildOptions(calib=folders["calib"], calib_size=300, check_latency=False, force=True))
    manifest = read_manifest(artifact)
    # The build's own calibration choice (subset(calib_size, seed=0) of the folder: all 300 here).
    calibration = find_images(folders["calib"]).subset(300, seed=0).load(manifest.preprocessing)
    settings = dataclasses.replace(load_target("cpu").quantization, reduce_range=True)
    say(f"{run.name}: quantizing 7-bit weights (reduce_range) from {len(calibration)} calibration images")
    record = quantize_onnx_static(artifact / "model_fp32.onnx", artifact / PATHS["int8_7bit"][0], calibration, settings)
    return name, manifest, json.loads(json.dumps(record, default=str))  # plain JSON for the results


def run_paths(label: str, artifact: Path, images: Path, out: Path, emulated: bool) -> dict:
    """All PATHS in one process (natively, or whole under qemu -cpu Haswell): logits per path."""
    out.mkdir(parents=True, exist_ok=True)
    spec = {"label": label, "images": str(images), "out": str(out), "threads": 2, "batch": 8,
            "expect_vnni": False if emulated else None,
            "paths": {n: [str(artifact / f), cfg] for n, (f, _, cfg) in PATHS.items()}}
    command = [sys.executable, "-c", INNER, json.dumps(spec)]
    if emulated:
        command = [shutil.which("qemu-x86_64-static") or "qemu-x86_64-static", "-cpu", "Haswell", *command]
    with subprocess.Popen(command, stderr=subprocess.PIPE, text=True) as child:
        for line in child.stderr:  # qemu warns about each CPUID feature its TCG lacks, per thread: noise
            if not line.startswith("qemu-x86_64-static: warning: TCG doesn't support"):
                print(line, end="", file=sys.stderr, flush=True)
    if child.returncode != 0:
        raise SystemExit(f"{label} inference failed (exit {child.returncode})")
    return {"host": json.loads((out / "host.json").read_text()),
            "logits": {n: np.load(out / f"{n}.npy") for n in PATHS}}


def native_latency(artifact: Path, image: np.ndarray, runs: int, warmup: int = 20) -> dict:
    """Batch-1 p50 per path, runs interleaved so every path sees the same machine load. Without
    spinning: an idle session's spinning pool threads would steal the 2 cores from the next one
    (with spinning, fp32 measured 26 ms interleaved vs 4.5 ms alone on this loaded host)."""
    import onnxruntime as ort

    sessions = {}
    for name, (file, _, config) in PATHS.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads, options.log_severity_level = 2, 1, 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for key, value in config.items():
            options.add_session_config_entry(key, value)
        sessions[name] = ort.InferenceSession(str(artifact / file), options, providers=["CPUExecutionProvider"])
    feed = {next(iter(sessions.values())).get_inputs()[0].name: image[None]}
    times = {name: [] for name in sessions}
    for i in range(warmup + runs):
        for name, session in sessions.items():
            started = time.perf_counter()
            session.run(None, feed)
            if i >= warmup:
                times[name].append(time.perf_counter() - started)
    p50 = {name: float(np.median(t)) * 1e3 for name, t in times.items()}
    return {"runs": runs, "warmup": warmup, "threads": 2, "batch": 1, "allow_spinning": 0, "p50_ms": p50,
            "p50_ratio_vs_fp32": {name: p50[name] / p50["fp32"] for name in p50}}


def score(label: str, result: dict, labels: np.ndarray, fp32_top: np.ndarray, native: dict) -> dict:
    scored = {}
    for name, logits in result["logits"].items():
        top = logits.argmax(1)
        entry = {"top1": float((top == labels).mean()), "agreement_with_fp32": float((top == fp32_top).mean())}
        if native is not result or NATIVE_REFERENCE[name] != name:  # not a native path against itself
            reference = native["logits"][NATIVE_REFERENCE[name]]
            entry["bit_exact_vs_native"] = bool(np.array_equal(logits, reference))
            entry["max_abs_diff_vs_native"] = float(np.abs(logits - reference).max())
        scored[name] = entry
        say(f"  {label} {name}: top-1 {entry['top1']:.4f}, agreement {entry['agreement_with_fp32']:.4f}"
            + (f", bit-exact {entry['bit_exact_vs_native']}" if "bit_exact_vs_native" in entry else ""))
    return scored


def one_model(folder: str, args, out: Path) -> tuple[dict, list[dict]]:
    from edgekit.data import labelled_images
    from edgekit.benchmark.run import labels_as_outputs

    run = ROOT / "benchmarks" / "results" / "train_ref" / folder
    work = out / "work" / folder / f"eval{args.eval_images}"  # link_folder only adds: one folder per size
    folders = split_folders(args.data, training_run(run), work, calib=300, evaluation=args.eval_images)
    artifact = work / "cpu-fixed"
    model, manifest, record_7bit = build_models(run, folders, artifact)
    images = labelled_images(folders["eval"])
    array = images.load(manifest.preprocessing)
    num_classes = manifest.model.config.num_classes if manifest.model.config else None
    labels = np.asarray(labels_as_outputs(images, manifest.classes, num_classes, folders["eval"]))
    np.save(work / "eval.npy", array)
    say(f"{folder}: {len(images)} evaluation images -> {work / 'eval.npy'}")
    native = run_paths("native", artifact, work / "eval.npy", work / "native", emulated=False)
    fp32_top = native["logits"]["fp32"].argmax(1)
    summary = {"run": folder, "model": model, "weights": str(run / "best.pt"), "eval_images": len(images),
               "calibration_images": 300, "classes": list(manifest.classes or []),
               "weights_8bit": weight_range(artifact / PATHS["int8_8bit"][0]),
               "weights_7bit": weight_range(artifact / PATHS["int8_7bit"][0]), "quantization_7bit": record_7bit,
               "native": {"host": native["host"], "paths": score("native", native, labels, fp32_top, native)}}
    if not summary["weights_7bit"]["fits_7_bits"]:
        raise SystemExit(f"{folder}: the reduce_range model has weights outside [-64, 64]: {summary['weights_7bit']}")
    say(f"{folder}: native latency ({args.latency_runs} interleaved batch-1 runs per path)")
    summary["native"]["latency"] = native_latency(artifact, array[0], args.latency_runs)
    if not args.skip_emulated:
        say(f"{folder}: emulated AVX2 (qemu -cpu Haswell), {len(images)} images x {len(PATHS)} paths")
        started = time.monotonic()
        emulated = run_paths("avx2", artifact, work / "eval.npy", work / "emulated", emulated=True)
        summary["emulated_avx2"] = {"host": emulated["host"], "wall_s_not_a_timing": round(time.monotonic() - started),
                                    "paths": score("avx2", emulated, labels, fp32_top, native)}
    rows = []
    for isa, key in (("avx512_vnni native", "native"), ("avx2 emulated", "emulated_avx2")):
        for name, entry in summary.get(key, {}).get("paths", {}).items():
            _, bits, config = PATHS[name]
            ratio = summary["native"]["latency"]["p50_ratio_vs_fp32"][name] if key == "native" else None
            rows.append({"model": folder, "isa": isa, "path": name, "weight_bits": bits or "fp32",
                         "session_option": ",".join(f"{k}={v}" for k, v in config.items()) or "ort defaults",
                         "eval_images": len(images), "top1": round(entry["top1"], 4),
                         "agreement_with_fp32": round(entry["agreement_with_fp32"], 4),
                         "bit_exact_vs_native": entry.get("bit_exact_vs_native", ""),
                         "max_abs_diff_vs_native": entry.get("max_abs_diff_vs_native", ""),
                         "p50_ratio_vs_fp32": round(ratio, 3) if ratio is not None else ""})
    return summary, rows


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenet_v2_cifar,keffnet_b0_16ch_cycle2",
                        help="folders of benchmarks/results/train_ref, comma-separated")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10" / "train"))
    parser.add_argument("--eval-images", type=int, default=2000)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "x86_int8_paths"))
    parser.add_argument("--skip-emulated", action="store_true")
    args = parser.parse_args()
    import onnxruntime as ort

    out = Path(args.out)
    started = time.monotonic()
    combined = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "host": {"cpu": cpu_model(), "arch": platform.machine(), "logical_cores": os.cpu_count(),
                         "loadavg_start": os.getloadavg()},
                "versions": {"onnxruntime": ort.__version__, "numpy": np.__version__, "python": platform.python_version()},
                "note": "emulated wall times are meaningless and not reported as timings", "models": {}}
    rows = []
    for folder in args.models.split(","):
        summary, model_rows = one_model(folder, args, out)
        summary.update(host=combined["host"] | {"loadavg_now": os.getloadavg()}, versions=combined["versions"],
                       command=combined["command"], created=combined["created"])
        (out / f"{folder}.json").write_text(json.dumps(summary, indent=2) + "\n")
        combined["models"][folder] = summary
        rows += model_rows
    combined["host"]["loadavg_end"] = os.getloadavg()
    combined["wall_s"] = round(time.monotonic() - started)
    write_results(out, "summary", combined, rows)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")
    sys.exit(main())
