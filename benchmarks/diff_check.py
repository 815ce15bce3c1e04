"""Does ``edgekit diff`` name the layers that cost int8 its accuracy? A causal check.

    PYTHONPATH=. .venv/bin/python benchmarks/diff_check.py \
        --artifact benchmarks/results/int8_plans/work/keffnet_b0_16ch/cpu-fixed \
        --diff-data benchmarks/results/int8_plans/work/keffnet_b0_16ch/plan_val \
        --eval benchmarks/results/int8_plans/work/keffnet_b0_16ch/eval [--top 1,2,4,8]

Runs ``edgekit diff`` on an artifact's fixed-recipe int8 model (statistics on ``--diff-data``),
then re-quantizes the artifact's fp32 ONNX model with the artifact's own calibration images and
recipe, keeping in fp32 (whole fusion groups, as the planner does) the N layers that each of
diff's two rankings puts worst: the per-tensor one (most SQNR added by the node) and the output
cost (each Q/DQ pair alone in the fp32 model, most logit noise). Controls: the N each ranks best,
and N drawn at random (seed 0). Last, the same recipe with moving-average ranges instead of the
artifact's, for diff's "spread: calibration is the lever" verdict. Each variant is scored by top-1
and agreement with fp32 on ``--eval`` (held out: never trained, calibrated or diffed on). If a
ranking points at the culprits, its worst-N variants recover most of the int8 loss and the
controls do not. Writes benchmarks/results/diff_check/<model>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgekit.artifact.folder import read_manifest
from edgekit.benchmark.run import output_labels
from edgekit.data import find_images
from edgekit.diff.run import diff_artifact
from edgekit.quantize.ort import calibration_ranges, quantize_with_ranges
from edgekit.quantize.plan.placement import fallback_units
from edgekit.runtimes.sessions import ort_logits
from edgekit.targets.profiles import load_target

ROOT = Path(__file__).resolve().parents[1]


def _nodes_for(tensors: list[str], units_by_tensor: dict, producer_of: dict, readers_of: dict) -> list[str]:
    """The planner's fallback group for each activation (its fused producer, itself, its consumers);
    for a weight, the nodes that read it."""
    nodes: list[str] = []
    for tensor in tensors:
        unit = units_by_tensor.get(tensor)
        if unit:
            nodes += list(unit.nodes)
        elif tensor in producer_of:
            nodes.append(producer_of[tensor])
        else:
            nodes += readers_of.get(tensor, [])
    return list(dict.fromkeys(nodes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--diff-data", required=True, help="images for diff's per-layer statistics")
    parser.add_argument("--eval", required=True, help="labelled held-out images for the scores")
    parser.add_argument("--top", default="1,2,4,8")
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "diff_check"))
    args = parser.parse_args()
    folder = Path(args.artifact)
    manifest = read_manifest(folder)
    report = diff_artifact(folder, data=args.diff_data)
    ranked = [t.tensor for t in report.layers.ranked() if t.introduced_db is not None and t.quantized]
    costly = [c.tensor for c in report.output_cost.costs]
    fp32_path, int8_path = folder / "model_fp32.onnx", folder / "model_int8.onnx"

    calibration_set = find_images(manifest.quantization.calibration.source, purpose="calibration")
    calibration = calibration_set.load(manifest.preprocessing)
    evaluation = find_images(args.eval, purpose="--eval").subset(args.limit, seed=0)
    labels = np.asarray(output_labels(evaluation, manifest, evaluation.root))
    images = evaluation.load(manifest.preprocessing)
    reference = ort_logits(fp32_path, images).argmax(1)

    import onnx

    graph = onnx.load(str(fp32_path)).graph
    producer_of = {out: node.name for node in graph.node for out in node.output}
    readers_of: dict[str, list[str]] = {}
    for node in graph.node:
        for name in node.input:
            readers_of.setdefault(name, []).append(node.name)
    units = {u.tensor: u for u in fallback_units(fp32_path, int8_path, calibration[:16]) if u.kind == "activation"}
    settings = load_target(manifest.target.name).quantization
    method = manifest.quantization.settings.get("calibration_method", settings.calibration_method)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgekit-diff-check-") as tmp:
        ranges = calibration_ranges(fp32_path, calibration, method, Path(tmp))

        def score(label: str, tensors: list[str], with_ranges=None) -> dict:
            nodes = _nodes_for(tensors, units, producer_of, readers_of)
            path = Path(tmp) / f"variant{len(rows)}.onnx"
            quantize_with_ranges(fp32_path, path, with_ranges or ranges, settings, nodes_to_exclude=nodes)
            predicted = ort_logits(path, images).argmax(1)
            row = {"variant": label, "tensors_fp32": tensors, "nodes_fp32": len(nodes),
                   "top1": round(100 * float((predicted == labels).mean()), 2),
                   "agreement": round(100 * float((predicted == reference).mean()), 2)}
            print(json.dumps({k: row[k] for k in ("variant", "nodes_fp32", "top1", "agreement")}), flush=True)
            return row

        fp32_top1 = round(100 * float((reference == labels).mean()), 2)
        rows.append(score("all int8 (the fixed recipe)", []))
        draw = random.Random(0)
        for count in (int(n) for n in args.top.split(",")):
            for name, order in (("SQNR added", ranked), ("output cost", costly)):
                rows.append(score(f"{name}: worst {count} in fp32", order[:count]))
                rows.append(score(f"{name}: best {count} in fp32 (control)", order[-count:]))
            rows.append(score(f"random {count} in fp32 (control)", draw.sample(costly, count)))
        if method != "moving-average":
            moving = calibration_ranges(fp32_path, calibration, "moving-average", Path(tmp))
            rows.append(score("all int8, moving-average ranges", [], with_ranges=moving))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"artifact": str(folder), "model": manifest.model.name, "target": manifest.target.name,
               "diff_data": args.diff_data, "eval": args.eval, "eval_images": len(images), "fp32_top1": fp32_top1,
               "sqnr_added_worst": ranked[:8], "output_cost": {
                   k: v for k, v in report.output_cost.to_dict().items() if k != "costs"} | {
                   "worst": [c.to_dict() for c in report.output_cost.costs[:8]]},
               "variants": rows}
    (out / f"{manifest.model.name}.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"fp32 top-1 {fp32_top1}; wrote {out / (manifest.model.name + '.json')}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")
    sys.exit(main())
