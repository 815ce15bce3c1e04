"""The exact graph rewrites (edgekit.rewrite) on the papers' compressed networks: fp32 and int8 speed
before and after, in one interleaved run.

For each model (freshly initialised weights: speed only, accuracy is not measured here), this exports
and simplifies it as `edgekit build` does (the plain fp32), applies the rewrite stage, quantizes both
with targets/cpu.toml's recipe on random calibration inputs, and times the four ONNX files with ONNX
Runtime (2 threads, batch 1): every round times each file once, in a fresh worker process as the
build's latency check does (p50 of --runs), and the table gives the median over --rounds rounds as
speed relative to the plain fp32. Results go to
benchmarks/results/rewrites/rewrites.{json,csv} with this CPU's flags.

    PYTHONPATH=. .venv/bin/python benchmarks/rewrites.py [--models vgg19_c32_col6,...] [--rounds 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import write_results  # noqa: E402

DEFAULT_MODELS = [*(f"vgg19_c32_col{i}" for i in range(1, 14)), "keffnet_b0_16ch", "keffnet2_b0_16ch"]
VARIANTS = ("plain_fp32", "plain_int8", "rewritten_fp32", "rewritten_int8")


def prepare(name: str, folder: Path, calibration: np.ndarray) -> tuple[dict[str, Path], dict]:
    from edgekit.builder import export, simplify
    from edgekit.models._registry import build_model, default_config
    from edgekit.quantize.ort import quantize_onnx_static
    from edgekit.rewrite import rewrite_onnx
    from edgekit.targets.profiles import load_target

    model = build_model(default_config(name)).eval()
    paths = {variant: folder / f"{variant}.onnx" for variant in VARIANTS}
    export.export_onnx(model, calibration[:2], folder / "raw.onnx")
    simplify.simplify_onnx(folder / "raw.onnx", paths["plain_fp32"])
    record = rewrite_onnx(paths["plain_fp32"], paths["rewritten_fp32"], calibration[:8], scratch=folder)
    settings = load_target("cpu").quantization
    for precision in ("plain", "rewritten"):
        quantize_onnx_static(paths[f"{precision}_fp32"], paths[f"{precision}_int8"], calibration, settings)
    applied = {r.name: r.matches for r in record.rewrites if r.applied}
    return paths, {"rewrites": applied, "near_misses": sum(len(r.near_misses) for r in record.rewrites)}


def time_interleaved(paths: dict[str, Path], shape: tuple, *, rounds: int, runs: int) -> dict[str, float]:
    """Median over rounds of each file's p50, every measurement in a fresh worker process (as the
    build's latency check): no ORT thread pool of another session spins on the 2 cores meanwhile."""
    from edgekit.runtimes.worker_process import measure_in_worker

    medians = {variant: [] for variant in paths}
    for _ in range(rounds):
        for variant, path in paths.items():
            result = measure_in_worker({"runtime": "onnxruntime", "model_path": str(path), "threads": 2,
                                        "runs": runs, "warmup": 10, "input_shape": list(shape)})
            if not result.get("ok"):
                raise RuntimeError(f"{path.name}: {result.get('error')}")
            medians[variant].append(float(result["latency_ms"]["p50"]))
    return {variant: float(np.median(values)) for variant, values in medians.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--calib", type=int, default=16, help="random calibration inputs")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "rewrites")
    args = parser.parse_args()
    from edgekit.targets.isa import build_host_record

    rows = []
    calibration = np.random.default_rng(0).standard_normal((args.calib, 3, 32, 32), dtype=np.float32)
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as scratch:
            print(f"{name}: export, rewrite, quantize", file=sys.stderr)
            paths, applied = prepare(name, Path(scratch), calibration)
            ms = time_interleaved(paths, (1, 3, 32, 32), rounds=args.rounds, runs=args.runs)
        base = ms["plain_fp32"]
        row = {"model": name, "rewrites": ";".join(f"{k}x{v}" for k, v in applied["rewrites"].items()) or "none",
               **{f"{variant}_ms": round(ms[variant], 4) for variant in VARIANTS},
               **{f"{variant}_speed": round(base / ms[variant], 3) for variant in VARIANTS[1:]}}
        rows.append(row)
        print(f"{name:20s} {row['rewrites']:28s} " + " ".join(f"{v} {row[f'{v}_speed']:.2f}x" for v in VARIANTS[1:]),
              file=sys.stderr)
    summary = {"command": "PYTHONPATH=. .venv/bin/python benchmarks/rewrites.py " + " ".join(sys.argv[1:]),
               "host": build_host_record(runtime="onnxruntime", weight_bits=7), "threads": 2, "batch": 1, "weights": "freshly initialised (speed only)",
               "speed": "plain fp32 p50 / variant p50, medians over interleaved rounds, a fresh process per measurement", "rows": rows}
    write_results(args.out, "rewrites", summary, rows)


if __name__ == "__main__":
    main()
