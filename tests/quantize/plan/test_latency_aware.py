"""Latency-aware mixed precision: where a graph has nodes whose int8 kernels are slow, the planner
also times plans that keep them in fp32, and judges them like every other candidate."""

from __future__ import annotations

import json

import numpy as np
import onnx
import torch
from click.testing import CliRunner

from edgekit.builder import export
from edgekit.cli.commands import cli
from edgekit.quantize.plan.placement import slow_int8_nodes
from edgekit.targets.isa import why_latency_not_measured_here
from edgekit.targets.profiles import load_target


class GroupedNet(torch.nn.Module):
    """A grouped 1x1 conv (4 channels per group) between dense convs, as kEffNet and resnet101 col13 have."""

    def __init__(self, classes: int):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 12, 3, padding=1)
        self.grouped = torch.nn.Conv2d(12, 12, 1, groups=3)
        self.head = torch.nn.Conv2d(12, classes, 1)

    def forward(self, x):
        return self.head(torch.relu(self.grouped(torch.relu(self.stem(x))))).mean((2, 3))


def test_the_slow_int8_nodes_are_found_by_pattern(tmp_path):
    path = tmp_path / "g.onnx"
    export.export_onnx(GroupedNet(4).eval(), np.zeros((1, 3, 16, 16), np.float32), path)
    groups = slow_int8_nodes(onnx.load(str(path)))
    assert list(groups) == ["grouped conv"] and len(groups["grouped conv"]) == 1


def test_the_planner_times_the_grouped_convs_in_fp32_where_it_measures_latency(pattern_data, tmp_path):
    torch.manual_seed(0)
    classes = sorted(p.name for p in pattern_data["val"].iterdir() if p.is_dir())
    path = tmp_path / "g.onnx"
    export.export_onnx(GroupedNet(len(classes)).eval(), np.zeros((1, 3, 16, 16), np.float32), path)
    result = CliRunner().invoke(cli, [
        "build", "-m", str(path), "-t", "cpu", "--calib", str(pattern_data["train"]), "--calib-size", "16",
        "--val", str(pattern_data["val"]), "--val-size", "40", "--classes", str(pattern_data["val"]),
        "--max-drop", "100", "--out", str(tmp_path / "art")])
    assert result.exit_code == 0, result.output
    plan = json.loads((tmp_path / "art" / "manifest.json").read_text())["quantization_plan"]
    speed_plans = [c for c in plan["candidates"] if c["settings"].get("fp32_for_speed")]
    if why_latency_not_measured_here(load_target("cpu")) is not None:
        assert speed_plans == []  # judged by accuracy and size only: nothing to gain from them
        return
    (candidate,) = speed_plans
    assert candidate["name"].endswith("+fp32-grouped") and candidate["settings"]["fp32_for_speed"] == ["grouped conv"]
    assert candidate["status"] == "tried" and candidate["p50_ms"] > 0 and "fallback_nodes" not in candidate["settings"]
    assert candidate["settings"]["nodes_kept_fp32"] >= 1
