"""Prune trained CIFAR-10 checkpoints and measure accuracy and latency before/after.

    .venv/bin/python benchmarks/cifar_prune.py --run benchmarks/results/train_cifar/mobilenet_v2_cifar \
        [--data ../shared/datasets/cifar10/train] [--finetune-subset 4000] [--out benchmarks/results/prune_cifar]

For the run's ``best.pt`` (written by ``edgekit train``) this makes, with ``edgekit prune``:
- ``ch50`` / ``ch80``: torch-pruning channel pruning removing 50% / 80% of the channels of every
  prunable group, then fine-tuning (``--channels-finetune-epochs`` on ``--channels-finetune-subset``
  training images, SGD one-cycle peak ``--lr``);
- ``l1``: the paper's global L1 unstructured pruning, 20% of the remaining conv weights per round,
  7 rounds (79.0% sparsity; round 3 is the paper's 48.8% point), fine-tuning after every round
  (``--finetune-epochs`` on ``--finetune-subset`` images, peak lr/10).
Fine-tuning samples come from the run's training split; validation accuracy is on its full
held-out split.
Every checkpoint (parent included) is then built for the ``cpu`` target (ORT fp32 + int8,
calibrated on 300 training-split images) and benched (batch 1, 300 runs) with top-1 on 1000
held-out images. Writes <out>/<model>.json and .csv, and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from edgekit.benchmark.run import bench_artifact
from edgekit.benchmark.rows import report_rows
from edgekit.benchmark.table import flatten
from edgekit.builder.pipeline import BuildOptions, build_artifact
from edgekit.models.checkpoint import read_checkpoint
from edgekit.prune.run import PruneResult, PruneSettings, prune_checkpoint

from _cifar_split import split_folders, training_run  # noqa: E402  (benchmarks/ is on sys.path as a script)
from _results import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def variants(args, run: dict) -> dict[str, PruneSettings]:
    split = dict(val_fraction=run["data"]["val_fraction"], seed=run["seed"], force=True, batch_size=args.batch_size)
    # Removing channels needs a real re-training; the unstructured rounds only need to recover a little each.
    channels = dict(method="channels", lr=args.lr, finetune_epochs=args.channels_finetune_epochs,
                    finetune_subset=args.channels_finetune_subset, **split)
    return {
        "ch50": PruneSettings(sparsity=0.5, **channels),
        "ch80": PruneSettings(sparsity=0.8, **channels),
        "l1": PruneSettings(method="l1-unstructured", sparsity=0.79, amount=0.2, lr=args.lr / 10,
                            finetune_epochs=args.finetune_epochs, finetune_subset=args.finetune_subset, **split),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="an edgekit train output folder (uses its best.pt)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "datasets" / "cifar10" / "train"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "prune_cifar"))
    parser.add_argument("--finetune-subset", type=int, default=4000, help="l1: training images per round")
    parser.add_argument("--finetune-epochs", type=int, default=1, help="l1: epochs per round")
    parser.add_argument("--channels-finetune-subset", type=int, default=20000)
    parser.add_argument("--channels-finetune-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.02, help="channel fine-tune peak lr (unstructured: lr/10)")
    parser.add_argument("--variants", default="ch50,ch80,l1")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--threads", type=int, help="inference threads [default: the cpu target's, 2]")
    parser.add_argument("--prune-only", action="store_true",
                        help="stop after pruning (benchmark later, on an idle machine: latency needs it)")
    parser.add_argument("--redo", action="store_true", help="prune again even where a pruned variant exists")
    args = parser.parse_args()
    parent = Path(args.run) / "best.pt"
    parent_checkpoint = read_checkpoint(parent)
    model = parent_checkpoint.config.name
    out = Path(args.out)
    work = out / "work" / model
    run = training_run(Path(args.run))
    folders = split_folders(args.data, run, work)
    checkpoints = {"parent": (parent, None)}
    for name in args.variants.split(","):
        report = work / name / "prune_report.json"
        if report.exists() and not args.redo:
            saved = json.loads(report.read_text())
            result = PruneResult(work / name, work / name / "pruned.pt", saved["rounds"], saved["summary"])
        else:
            result = prune_checkpoint(parent, args.data, work / name, variants(args, run)[name])
        checkpoints[name] = (result.checkpoint, result)
    if args.prune_only:
        return 0
    rows, summary = [], {"model": model, "threads": args.threads or "target default", "parent": str(parent), "run_best_metrics": parent_checkpoint.metrics,
                         # each variant's actual settings are in its prune summary (reused variants keep theirs)
                         "variants": {}}
    for name, (weights, result) in checkpoints.items():
        artifact = build_artifact(model, "cpu", work / f"{name}-cpu", weights=weights,
                                  options=BuildOptions(calib=folders["calib"], check_latency=False, force=True))
        report = bench_artifact(artifact, data=folders["eval"], runs=args.runs, warmup=30, threads=args.threads)
        entry = {"bench": report}
        if result is not None:
            entry["prune"] = {"summary": result.summary, "rounds": result.rounds}
        summary["variants"][name] = entry
        rows += [{"model": model, "variant": name, **flatten(r)} for r in report_rows(report)]
        print(json.dumps(rows[-2:]), flush=True)
    write_results(out, model, summary, rows)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")
    sys.exit(main())
