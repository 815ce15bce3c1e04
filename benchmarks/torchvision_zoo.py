"""Every torchvision classification network through build (cpu) + bench: pass, fail or refused, and why.

    .venv/bin/python benchmarks/torchvision_zoo.py                       # all of them (hours on 2 cores)
    .venv/bin/python benchmarks/torchvision_zoo.py --models resnet18,mobilenet_v3_small,shufflenet_v2_x0_5

For each name of ``torchvision.models.list_models(module=torchvision.models)``: refused up front
(edgekit.models.torchvision_zoo's tables: the reason is recorded), else built as ``-m torchvision:NAME``
for the ``cpu`` target at a small input (``--input-size``, raised to the network's minimum or fixed
size) with a few generated calibration images, then benched. Weights: random (seed 0), BatchNorm
statistics re-estimated on the generated images (no download is possible here; see README.md,
"What the weights are"), so parity is checked at 5e-4 as in tests/builder/test_registry_pipeline.py,
or at 4x PyTorch's own float32 error where that is larger: some deep random networks are so
ill-conditioned that PyTorch float32 and float64 disagree (efficientnet_b7 at 64 px: 0.15 of the
largest logit, logits ~2e4), and two float32 implementations may then differ by about twice that.
Each record keeps that error (``pytorch_fp32_vs_fp64``) and the tolerance used.
"pass" = export, parity, int8 (loading with ORT's default and with its exact x86 kernels, which
CPUs without VNNI need) and every bench row ran; "fail" records the stage and the error line.
``--emulate-avx2`` also runs each int8 model on an emulated AVX2 CPU (qemu-x86_64 -cpu Haswell, no
AVX-512, no VNNI) with edgekit's session and requires its outputs to equal this host's bit for bit.
Every record names the CPU (and ISA level) it ran on, and the summary this sitting's host.
Writes <out>/<tag>.json and .csv after every network, so a long run keeps what it measured;
``--resume`` keeps the passed and refused records already in <out>/<tag>.json and runs the other
names (failures again), so the whole zoo can be measured in several sittings.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from edgekit.artifact.folder import read_manifest
from edgekit.benchmark.run import bench_artifact
from edgekit.builder.pipeline import BuildOptions, build_artifact
from edgekit.core.errors import EdgekitError
from edgekit.data import find_images
from edgekit.models import build_model, default_config, get_spec, save_checkpoint
from edgekit.models.batchnorm import recalibrate_batchnorm
from edgekit.models.torchvision_zoo import PREFIX, refusal, torchvision_names

from _results import write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

PARITY_TOLERANCE = 5e-4  # random weights: see tests/builder/test_registry_pipeline.py
CONDITIONING_MARGIN = 4.0  # x PyTorch's own float32 error: two float32 implementations, each that far off
NUM_CLASSES = 10


def generated_images(folder: Path, count: int, *, size: int = 96, seed: int = 0) -> Path:
    """Smooth random colour fields with edges: activations with structure, unlike white noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for index in range(count):
        waves = [np.sin(2 * np.pi * (rng.uniform(0.5, 4) * xx + rng.uniform(0.5, 4) * yy + rng.uniform()))
                 for _ in range(3)]
        image = (np.stack(waves, axis=-1) + 1) / 2 * rng.uniform(0.4, 1.0, size=3)
        image += rng.normal(0, 0.05, size=image.shape)
        Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(folder / f"{index:03d}.png")
    return folder


def zoo_input_size(name: str, small: int) -> int:
    rule = get_spec(PREFIX + name).input_rule
    return rule.only if rule.only is not None else max(small, rule.minimum)


def float32_error(model, images: np.ndarray) -> float:
    """max |float32 - float64 logits| / max |float64 logit| of PyTorch itself on a few images."""
    import copy

    import torch

    batch = torch.from_numpy(np.ascontiguousarray(images[:8]))
    with torch.no_grad():
        single = model.eval()(batch).double()
        double = copy.deepcopy(model).double()(batch.double())
    return float((single - double).abs().max() / double.abs().max().clamp_min(1e-30))


def one_network(name: str, work: Path, calib: Path, args) -> dict:
    import torch

    reason = refusal(name)
    if reason:
        return {"model": name, "status": "refused", "reason": reason}
    host = host_record()
    record = {"model": name, "status": "fail", "stage": "build",
              "cpu": f"{host['cpu']} ({host.get('isa_level', host['arch'])})"}  # sittings may differ in CPU
    started = time.monotonic()
    try:
        size = zoo_input_size(name, args.input_size)
        record["input_size"] = size
        torch.manual_seed(0)
        config = default_config(PREFIX + name, num_classes=NUM_CLASSES, input_size=size)
        model = build_model(config)
        record["params_m"] = round(sum(p.numel() for p in model.parameters()) / 1e6, 3)
        spec = get_spec(PREFIX + name)
        calib_array = find_images(calib).load(spec.preprocessing(input_size=size))
        recalibrate_batchnorm(model, calib_array)
        record["pytorch_fp32_vs_fp64"] = float32_error(model, calib_array)
        tolerance = max(PARITY_TOLERANCE, CONDITIONING_MARGIN * record["pytorch_fp32_vs_fp64"])
        record["parity_tolerance"] = tolerance
        weights = save_checkpoint(work / f"{name}.pt", config, model.state_dict())
        out = work / f"{name}-cpu"
        build_artifact(PREFIX + name, "cpu", out, weights=weights, options=BuildOptions(
            calib=calib, calib_size=args.calib_size, parity_tolerance=tolerance, check_latency=False,
            force=True))
        manifest = read_manifest(out)
        record.update(parity=manifest.export.parity.max_normalised_diff,
                      int8_agreement=manifest.quantization.int8_vs_fp32.top1_agreement, stage="x86 kernel paths")
        record.update(x86_kernel_paths(out, calib_array[:2], emulate=args.emulate_avx2))
        record["stage"] = "bench"
        report = bench_artifact(out, runs=args.runs, warmup=args.warmup)
        failed = [f"{row['file']}: {row.get('error')}" for row in report["results"] if not row.get("ok")]
        for row in report["results"]:
            if row.get("ok"):
                record[f"p50_ms_{row['runtime']}_{row['precision']}"] = row["latency_ms"]["p50"]
        record.update(status="fail" if failed else "pass", reason="; ".join(failed) or None)
        if not failed:
            record.pop("stage")
    except EdgekitError as error:
        record["reason"] = error.one_line()
    except Exception as error:  # a bug or an exporter failure: recorded, and the zoo goes on
        record["reason"] = f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"
        record["traceback"] = traceback.format_exc(limit=4)
    record["seconds"] = round(time.monotonic() - started, 1)
    return record


def x86_kernel_paths(folder: Path, images: np.ndarray, *, emulate: bool) -> dict:
    """The built int8 loads with each x86 kernel path of ORT (defaults, and the exact option that CPUs
    without VNNI need), and, with ``emulate``, runs on an emulated AVX2 CPU with edgekit's session:
    its exact int8 there must equal this host's bit for bit."""
    from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS
    from edgekit.runtimes.sessions import ort_logits, ort_session

    int8 = folder / "model_int8.onnx"
    ort_session(int8, config=EXACT_INT8_OPTIONS)  # raises (a fail record) if it does not load
    record = {"loads_with_exact_option": True,
              "weight_dequantizers_separated": read_manifest(folder).quantization.settings.get(
                  "weight_dequantizers_separated", 0)}
    if emulate:
        import subprocess

        from edgekit.runtimes import board_runner

        started = time.monotonic()
        native = ort_logits(int8, images, batch_size=1, threads=1)
        np.save(folder.parent / "images.npy", images)
        done = subprocess.run(["qemu-x86_64-static", "-cpu", "Haswell", sys.executable, board_runner.__file__, "infer",
                               str(int8), str(folder.parent / "images.npy"), str(folder.parent / "avx2.npy"),
                               "--threads", "1"], capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"emulated AVX2 run failed: {done.stderr.strip().splitlines()[-1:]}")
        emulated = np.load(folder.parent / "avx2.npy")
        record["avx2_emulated_bit_exact"] = bool(np.array_equal(native, emulated))
        record["avx2_emulated_seconds"] = round(time.monotonic() - started, 1)
        if not record["avx2_emulated_bit_exact"]:
            raise RuntimeError(f"int8 on an emulated AVX2 CPU differs from this host's by "
                               f"{float(np.abs(native - emulated).max()):.3g}")
    return record


CSV_KEYS = ("model", "status", "stage", "reason", "cpu", "input_size", "params_m", "seconds", "pytorch_fp32_vs_fp64",
            "parity_tolerance", "parity", "int8_agreement", "loads_with_exact_option",
            "weight_dequantizers_separated", "avx2_emulated_bit_exact",
            "p50_ms_pytorch_fp32", "p50_ms_onnxruntime_fp32", "p50_ms_onnxruntime_int8")


def host_record() -> dict:
    """The CPU this sitting ran on: ONNX Runtime's int8 kernels, and so the results, depend on it."""
    from edgekit.targets.isa import build_host_record

    return build_host_record(runtime="onnxruntime", kernels="exact", weight_bits=8)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated torchvision names [default: all of them]")
    parser.add_argument("--input-size", type=int, default=64, help="small input (raised to a network's minimum)")
    parser.add_argument("--calib-size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--tag", default="torchvision_zoo", help="result file name: <out>/<tag>.json/.csv")
    parser.add_argument("--resume", action="store_true", help="keep <out>/<tag>.json's records, run the rest")
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="also run each int8 model on an emulated AVX2 CPU (qemu-x86_64 -cpu Haswell)")
    args = parser.parse_args()
    names = args.models.split(",") if args.models else torchvision_names()
    unknown = sorted(set(names) - set(torchvision_names()))
    if unknown:
        parser.error(f"not torchvision classification models: {', '.join(unknown)}")
    records = []
    previous = Path(args.out) / f"{args.tag}.json"
    if args.resume and previous.is_file():
        kept = json.loads(previous.read_text())
        # --emulate-avx2 adds a check and changes no measurement: sittings with and without it combine.
        measured_as = {k: v for k, v in kept["settings"].items() if k not in ("models", "out", "emulate_avx2")}
        now = {k: v for k, v in vars(args).items() if k not in ("models", "out", "resume", "emulate_avx2")}
        if measured_as != now:
            parser.error(f"--resume: {previous} was measured with {measured_as}, this run has {now}")
        # Failures run again: the code may have changed since.
        records = kept["models"]  # every name's, not only --models'; a failure stays until it is re-run
        done = {r["model"] for r in records if r["status"] != "fail"}
        names = [n for n in names if n not in done]
        print(f"resuming: {len(done)} networks kept from {previous}, {len(names)} to run", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="edgekit-zoo-") as scratch:
        calib = generated_images(Path(scratch) / "calib", args.calib_size)
        for name in names:
            work = Path(scratch) / name
            work.mkdir()
            print(f"== {name}", file=sys.stderr, flush=True)
            records = [r for r in records if r["model"] != name] + [one_network(name, work, calib, args)]
            print(f"   {records[-1]['status']}: {records[-1].get('reason') or ''}", file=sys.stderr, flush=True)
            # Latencies mean little on a loaded host; the load says how loaded it was.
            summary = {"settings": {k: v for k, v in vars(args).items() if k != "resume"},
                       "host": host_record(), "load_average_1_5_15_min": os.getloadavg(),
                       "weights": "random (seed 0), BatchNorm re-estimated on the generated "
                       "calibration images", "counts": {s: sum(r["status"] == s for r in records)
                                                        for s in ("pass", "fail", "refused")}, "models": records}
            write_results(Path(args.out), args.tag, summary, [{k: r.get(k) for k in CSV_KEYS} for r in records])
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")
    sys.exit(main())
