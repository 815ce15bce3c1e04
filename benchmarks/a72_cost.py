"""fp32 vs int8 on an emulated Cortex-A72 (Raspberry Pi 4): counted instructions and estimated cycles.

For mobilenet_v2 at 224 (random weights: the cost does not depend on them) and, when present, the
trained MobileNetV2-CIFAR reference (benchmarks/results/train_ref/mobilenet_v2_cifar/best.pt), this
exports the fp32 ONNX, quantizes it as targets/rpi4.toml does (ORT U8S8 QDQ, per-channel weights;
calibrated on random images, which changes scales but not the cost), and runs
edgekit.runtimes.emulation.a72_cost.estimate_a72_cycles on both, 1 thread. Results go to
benchmarks/results/a72_cost/a72_cost.{json,csv}, beside published Raspberry Pi 4 fp32/int8 ratios.

    PYTHONPATH=. .venv/bin/python benchmarks/a72_cost.py [--runs 3] [--models mobilenet_v2,mobilenet_v2_cifar]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import write_results  # noqa: E402

CIFAR_RUN = ROOT / "benchmarks" / "results" / "train_ref" / "mobilenet_v2_cifar" / "best.pt"

# Published single-thread Raspberry Pi 4 latencies (ms, min of 10) from ncnn's benchmark/README.md,
# section "Raspberry Pi 4 Model B Broadcom BCM2711B0, Cortex-A72 (ARMv8) (1.8GHz x 4)",
# `benchncnn 10 1 0 -1 1`. ncnn lists no int8 mobilenet_v2; these are its closest int8 CNN rows.
# They are ncnn's own NEON kernels, not ONNX Runtime's MLAS kernels: a reference for the size of an
# int8 gain on this core, not for ORT.
NCNN_RPI4_1_THREAD_MS = {
    "mobilenet (v1)": {"fp32": 123.76, "int8": 84.66},
    "resnet18": {"fp32": 190.80, "int8": 157.92},
    "googlenet": {"fp32": 235.38, "int8": 209.63},
    "squeezenet": {"fp32": 73.35, "int8": 69.17},
    "mobilenet_v2": {"fp32": 92.98, "int8": None},
}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def export_pair(name: str, folder: Path) -> tuple[Path, Path, tuple[int, ...]]:
    import torch

    from edgekit.builder.export import export_onnx
    from edgekit.models import ModelConfig, build_model
    from edgekit.models.checkpoint import module_from_checkpoint, read_checkpoint
    from edgekit.quantize.ort import quantize_onnx_static
    from edgekit.targets.profiles import load_target

    torch.manual_seed(0)
    if name == "mobilenet_v2_cifar":
        module = module_from_checkpoint(read_checkpoint(CIFAR_RUN))
        size = 32
    else:
        size = 224
        module = build_model(ModelConfig(name, num_classes=1000, in_channels=3, input_size=size)).eval()
    shape = (1, 3, size, size)
    rng = np.random.default_rng(0)
    fp32, int8 = folder / f"{name}_fp32.onnx", folder / f"{name}_int8.onnx"
    export_onnx(module, rng.standard_normal(shape, dtype=np.float32), fp32)
    calibration = rng.standard_normal((8, *shape[1:]), dtype=np.float32)
    quantize_onnx_static(fp32, int8, calibration, load_target("rpi4").quantization)
    return fp32, int8, shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="inferences between the two marks")
    parser.add_argument("--models", default="mobilenet_v2,mobilenet_v2_cifar")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "a72_cost")
    args = parser.parse_args()
    from edgekit.runtimes.emulation.a72_cost import a72_estimate_unavailable, estimate_a72_cycles

    problem = a72_estimate_unavailable()
    if problem:
        raise SystemExit(problem)
    names = [n for n in args.models.split(",") if n != "mobilenet_v2_cifar" or CIFAR_RUN.is_file()]
    summary: dict = {"method": None, "models": {}, "published_rpi4_ncnn_1_thread_ms": NCNN_RPI4_1_THREAD_MS}
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgekit-a72-bench-") as tmp:
        for name in names:
            say(f"{name}: export + int8 (rpi4 settings)")
            fp32, int8, shape = export_pair(name, Path(tmp))
            entry = {}
            for precision, path in (("fp32", fp32), ("int8", int8)):
                started = time.monotonic()
                estimate = estimate_a72_cycles(path, shape, runs=args.runs)
                say(f"{name} {precision}: {estimate.instructions / 1e6:.1f} M instructions, "
                    f"{estimate.cycles / 1e6:.1f} M cycles ({estimate.bottleneck}), "
                    f"~{estimate.milliseconds():.1f} ms at 1.5 GHz; {time.monotonic() - started:.0f} s")
                entry[precision] = estimate.to_dict()
                summary["method"] = estimate.method
                classes = estimate.counts_by_class
                rows.append({"model": name, "input": "x".join(map(str, shape)), "precision": precision,
                             "instructions_M": round(estimate.instructions / 1e6, 3),
                             "cycles_M": round(estimate.cycles / 1e6, 3), "bottleneck": estimate.bottleneck,
                             "ms_at_1_5_ghz": round(estimate.milliseconds(), 2),
                             "fp_fma_M": round(classes.get("fp_fma", 0) / 1e6, 3),
                             "simd_int_mul_long_M": round(classes.get("simd_int_mul_long", 0) / 1e6, 3),
                             "simd_int_accumulate_shift_M": round(classes.get("simd_int_accumulate_shift", 0) / 1e6, 3),
                             "simd_int_dot": classes.get("simd_int_dot", 0),
                             "emulation_s": round(estimate.seconds, 1)})
            entry["fp32_over_int8_cycles"] = entry["fp32"]["estimated_cycles"] / entry["int8"]["estimated_cycles"]
            entry["fp32_over_int8_instructions"] = (entry["fp32"]["instructions_per_inference"]
                                                    / entry["int8"]["instructions_per_inference"])
            say(f"{name}: fp32/int8 estimated cycles {entry['fp32_over_int8_cycles']:.2f}x")
            summary["models"][name] = entry
    published = {name: round(ms["fp32"] / ms["int8"], 3) for name, ms in NCNN_RPI4_1_THREAD_MS.items() if ms["int8"]}
    summary["published_fp32_over_int8"] = published
    summary["comparison"] = (
        "ncnn publishes no int8 mobilenet_v2 for the Raspberry Pi 4; its 1-thread fp32/int8 ratios for other "
        f"CNNs are {published} (ncnn kernels, not ONNX Runtime's). The estimate here is compute only "
        "(no memory effects), for ORT's MLAS kernels under qemu -cpu cortex-a72.")
    write_results(args.out, "a72_cost", summary, rows)


if __name__ == "__main__":
    main()
