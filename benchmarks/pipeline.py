"""Build and bench mobilenet_v2 (224) and efficientnet_b0 for the cpu and openvino targets.

    .venv/bin/python benchmarks/pipeline.py [--cifar ../shared/datasets/cifar10/train] [--out benchmarks/results]

Data: CIFAR-10 training images (ImageFolder), upscaled to 224 by each model's preprocessing.
Weights: no pretrained weights can be downloaded here, so each network is randomly initialised and
its BatchNorm statistics are re-estimated on 256 CIFAR-10 images (no weight is trained). Its top-1
is therefore chance level (~10%); what this benchmark measures is latency, memory, size, ONNX parity
and int8-vs-fp32 agreement on held-out images. Three disjoint slices of the image list are used:
BN statistics, calibration (300), evaluation (500).
Writes <out>/pipeline.json (everything) and <out>/pipeline.csv (one row per model file/runtime).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from edgekit.artifact.folder import read_manifest
from edgekit.benchmark.run import bench_artifact
from edgekit.benchmark.rows import report_rows
from edgekit.benchmark.table import flatten, print_bench_table
from edgekit.builder.pipeline import BuildOptions, build_artifact
from edgekit.data import find_images
from edgekit.models import build_model, default_config, get_spec, save_checkpoint
from edgekit.models.batchnorm import recalibrate_batchnorm

from _cifar_split import link_folder  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from _results import write_results  # noqa: E402

MODELS = ("mobilenet_v2", "efficientnet_b0")
TARGETS = ("cpu", "openvino")


def split_folder(images, work: Path) -> dict[str, Path]:
    """Disjoint, deterministic slices as folders of symlinks (ImageFolder layout kept)."""
    order = np.random.default_rng(123).permutation(len(images))
    slices = {"bn": order[:256], "calib": order[256:556], "eval": order[556:1056]}
    return {name: link_folder(images, indices, work / name) for name, indices in slices.items()}


def random_model(name: str, options: dict | None, bn_folder: Path):
    """A checkpoint of the network at seed 0 with BatchNorm statistics re-estimated (no weight trained)."""
    torch.manual_seed(0)  # the same random network on every run
    config = default_config(name, num_classes=10, options=options)
    model = build_model(config)
    recalibrate_batchnorm(model, find_images(bn_folder).load(get_spec(name).preprocessing()))
    return config, model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cifar", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/cifar10/train"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--model-options", action="append", default=[], metavar="NAME=JSON",
                        help='builder options of one model, e.g. mobilenet_v2_rs_cifar={"replications":[5],"split_at":2}')
    parser.add_argument("--tag", default="pipeline", help="result file name: <out>/<tag>.json/.csv")
    parser.add_argument("--pretrained", action="store_true",
                        help="build torchvision:NAME with its DEFAULT ImageNet weights and their preprocessing "
                             "(the torch hub cache, else a download; agreement then reflects a trained net)")
    args = parser.parse_args()
    options = {name: json.loads(text) for name, text in (item.split("=", 1) for item in args.model_options)}
    out = Path(args.out)
    work = out / "work"
    folders = split_folder(find_images(args.cifar), work)
    weights_note = ("torchvision ImageNet weights (1000 classes: CIFAR top-1 is meaningless, agreement is not)"
                    if args.pretrained else
                    "random init + BatchNorm statistics re-estimated on 256 CIFAR-10 images (top-1 is chance)")
    summary = {"weights": weights_note,
               "cifar": args.cifar, "runs": []}
    rows = []
    for name in args.models.split(","):
        if args.pretrained:
            # edgekit's loader: the hub cache, else torchvision's download (one line when offline).
            model, source = f"torchvision:{name}", {"pretrained": "DEFAULT"}
        else:
            model = name
            config, network = random_model(name, options.get(name), folders["bn"])
            source = {"weights": save_checkpoint(work / f"{name}.pt", config, network.state_dict()),
                      "num_classes": config.num_classes}
        for target in args.targets.split(","):
            artifact = build_artifact(model, target, work / f"{name}-{target}",
                                      options=BuildOptions(calib=folders["calib"], force=True), **source)
            report = bench_artifact(artifact, data=folders["eval"], runs=args.runs, warmup=30)
            print_bench_table(report)
            manifest = read_manifest(artifact)
            summary["runs"].append({"model": name, "options": manifest.model.config.options, "target": target,
                                    "bench": report,
                                    "parity": manifest.export.parity.to_dict(),
                                    "build_latency_check": manifest.latency_check.to_dict(),
                                    "recommended_model": manifest.recommended_model,
                                    "recommendation_reason": manifest.recommendation_reason})
            rows += [{"model": name, "target": target, **flatten(r)} for r in report_rows(report)]
    write_results(out, args.tag, summary, rows)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEKIT_NO_PROGRESS", "0")
    sys.exit(main())
