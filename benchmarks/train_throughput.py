"""Training throughput on this machine: 1 process vs N processes (DDP, gloo), images per second.

    .venv/bin/python benchmarks/train_throughput.py [--data ../shared/datasets/cifar10/train]
        [--models mobilenet_v2_cifar,keffnet_b0_16ch] [--subset 2048] [--out benchmarks/results]

Each configuration runs ``edgekit train`` for 2 epochs on a deterministic subset of the training
split with the same global batch (128). The number reported is epoch 2's ``images_per_second``
from the run's own log (training steps only: forward, backward, optimiser, gradient all-reduce;
epoch 1 is warm-up; data decoding and validation are excluded). 1 process gets every core as
intra-op threads; N processes share them (cores / N threads each). Run it on an idle machine.
Writes <out>/train_throughput.json and .csv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]


def measure(model: str, data: str, subset: int, nproc: int, workdir: Path) -> dict:
    out = workdir / f"{model}-{nproc}"
    threads = max(1, (os.cpu_count() or 1) // nproc)
    command = [sys.executable, "-m", "edgekit", "train", "--model", model, "--data", data, "--out", str(out),
               "--subset", str(subset), "--epochs", "2", "--batch-size", "128", "--threads", str(threads),
               "--nproc", str(nproc), "--force"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, EDGEKIT_NO_PROGRESS="1"),
                            check=False)
    if result.returncode:
        raise SystemExit(f"{model} nproc={nproc} failed:\n{result.stderr[-2000:]}")
    log = json.loads((out / "log.json").read_text())
    config = json.loads((out / "config.json").read_text())
    return {"model": model, "processes": nproc, "threads_per_process": config["threads_per_process"],
            "backend": config["backend"] or "none", "global_batch": 128, "images_per_epoch": log[-1]["train_images"],
            "images_per_second": round(log[-1]["images_per_second"], 1),
            "epoch_seconds_incl_validation": round(log[-1]["seconds"], 1),
            "wall_seconds_incl_startup": round(time.monotonic() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10" / "train"))
    parser.add_argument("--models", default="mobilenet_v2_cifar,keffnet_b0_16ch")
    parser.add_argument("--subset", type=int, default=2048)
    parser.add_argument("--nprocs", default="1,2")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for model in args.models.split(","):
            for nproc in map(int, args.nprocs.split(",")):
                rows.append(measure(model, args.data, args.subset, nproc, Path(workdir)))
                print(json.dumps(rows[-1]), flush=True)
    host = {"cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    write_results(Path(args.out), "train_throughput", {"host": host, "results": rows}, rows)


if __name__ == "__main__":
    main()
