"""fp32 vs the fixed int8 recipe vs the planned int8 artifact, per trained model and target.

    .venv/bin/python benchmarks/int8_plans.py --run benchmarks/results/train_ref/keffnet_b0_16ch \
        [--targets cpu,openvino,rpi4] [--max-drop 1.0] [--data ../shared/datasets/cifar10/train]

Uses the run's own split (``_cifar_split``): 300 calibration images from its training part; from its
held-out part (never trained on) 2,000 images for the planner's ``--val`` and a disjoint 3,000 for
the accuracy reported here, so the plan is not scored on the images it was chosen by. For each
target: a plain build (fp32 + the fixed recipe) and a ``--max-drop`` build, each in its own process
(build wall time and peak RSS), then ``edgekit bench`` of both (batch 1, the target's threads) with
top-1 and agreement on the evaluation images. rpi4 models run here in x86 ONNX Runtime: their
accuracy is the board's (int8 is bit-exact across the two, see the arm check) but their latency is
this host's, not the Pi's. Writes benchmarks/results/int8_plans/<model>.json and .csv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _cifar_split import split_folders, training_run  # noqa: E402  (benchmarks/ is on sys.path as a script)
from _results import write_results  # noqa: E402

from edgekit.artifact.folder import read_manifest
from edgekit.benchmark.run import bench_artifact
from edgekit.benchmark.rows import report_rows
from edgekit.benchmark.table import flatten
from edgekit.models.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PEAK_RSS = ("import resource, runpy, sys; sys.argv = ['edgekit'] + sys.argv[1:]\n"
            "try:\n    runpy.run_module('edgekit', run_name='__main__')\n"
            "finally:\n    print('PEAK_RSS_MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, file=sys.stderr)")


def timed_build(args: list[str]) -> dict:
    """``edgekit build ARGS`` in a fresh process: wall seconds and that process's peak RSS."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", PEAK_RSS, "build", *args], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"build failed ({' '.join(args)}):\n{done.stderr[-3000:]}")
    peak = [line.split()[1] for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_MB")]
    return {"build_seconds": round(seconds, 1), "build_peak_rss_mb": round(float(peak[-1]), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="an edgekit train output folder (uses its best.pt)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10" / "train"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int8_plans"))
    parser.add_argument("--targets", default="cpu,openvino,rpi4")
    parser.add_argument("--max-drop", type=float, default=1.0)
    parser.add_argument("--objective", default="latency")
    parser.add_argument("--plan-budget", type=float, help="seconds [default: edgekit's]")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    weights = Path(args.run) / "best.pt"
    checkpoint = read_checkpoint(weights)
    model = checkpoint.config.name
    out = Path(args.out)
    work = out / "work" / model
    folders = split_folders(args.data, training_run(Path(args.run)), work, calib=300, evaluation=3000,
                            plan_val=2000)
    rows, summary = [], {"model": model, "weights": str(weights), "checkpoint_metrics": checkpoint.metrics,
                         "max_drop": args.max_drop, "objective": args.objective, "targets": {}}
    for target in args.targets.split(","):
        common = ["-m", model, "-t", target, "--weights", str(weights), "--calib", str(folders["calib"]), "--force"]
        plans = {"fixed": [], "planned": ["--max-drop", str(args.max_drop), "--val", str(folders["plan_val"]),
                                          "--objective", args.objective]}
        if args.plan_budget:
            plans["planned"] += ["--plan-budget", str(args.plan_budget)]
        summary["targets"][target] = {}
        for label, extra in plans.items():
            artifact = work / f"{target}-{label}"
            build = timed_build([*common, "-o", str(artifact), *extra])
            manifest = read_manifest(artifact)
            report = bench_artifact(artifact, data=folders["eval"], limit=3000, runs=args.runs, warmup=30)
            plan = manifest.quantization_plan
            summary["targets"][target][label] = {
                "build": build, "recommended_model": manifest.recommended_model,
                "recommendation_reason": manifest.recommendation_reason,
                "plan": plan.to_dict() if plan is not None else None, "bench": report}
            for result in report_rows(report):
                rows.append({"model": model, "target": target, "build": label, **build,
                             "plan_chosen": plan.chosen if plan is not None else "",
                             "recommended": result.file == manifest.recommended_model, **flatten(result)})
            print(json.dumps({k: rows[-1][k] for k in ("target", "build", "plan_chosen")} | build), flush=True)
        write_results(out, model, summary, rows)  # after each target: a stopped run keeps those done
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")
    sys.exit(main())
