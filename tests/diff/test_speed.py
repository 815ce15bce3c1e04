"""diff's speed section: ONNX Runtime's per-node profile names the int8 model's slow nodes by pattern."""

from __future__ import annotations

import json

from click.testing import CliRunner

from edgekit.cli.commands import cli
from edgekit.rewrite.patterns import REMEDIES, classify
from tests.rewrite.test_stage import exported


def test_patterns_are_told_apart_by_the_optimized_graphs_node():
    conv = {"op": "QLinearConv", "group": 4, "weight": (12, 1, 3, 3)}
    assert classify(conv, "QLinearConv") == "depthwise conv with a channel multiplier"
    assert classify({**conv, "weight": (4, 1, 3, 3)}, "QLinearConv") is None  # multiplier 1: ORT's fast path
    assert classify({**conv, "weight": (12, 3, 1, 1)}, "QLinearConv") == "grouped conv"
    assert classify({**conv, "group": 1, "weight": (12, 4, 1, 1)}, "QLinearConv") is None
    assert classify(None, "BatchNormalization") == "float BatchNormalization"
    assert classify(None, "Transpose") == "Transpose (channel shuffle or layout)"
    assert classify(None, "DequantizeLinear") == "float op between Q/DQ"
    assert classify(None, "QLinearAdd") is None


def test_diff_names_the_depthwise_multiplier_conv_of_an_unrewritten_build(pattern_data, tmp_path):
    runner = CliRunner()
    model, art = exported(tmp_path), tmp_path / "art"
    result = runner.invoke(cli, ["build", "-m", str(model), "-t", "cpu", "--calib", str(pattern_data["train"]),
                                 "--calib-size", "16", "--no-rewrite", "--no-latency-check", "--out", str(art)])
    assert result.exit_code == 0, result.output
    flat = sorted(p for p in pattern_data["val"].iterdir() if p.is_dir())[0]  # unlabelled: an ONNX file has no classes
    result = runner.invoke(cli, ["diff", str(art), "--data", str(flat), "--images", "4",
                                 "--output-images", "8", "--no-output-cost", "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    speed = json.loads((tmp_path / "d.json").read_text())["speed"]
    assert speed["int8_model"] == "model_int8.onnx" and speed["fp32_ms"] > 0 and speed["int8_ms"] > 0
    depthwise = [n for n in speed["slowest"] if n["pattern"] == "depthwise conv with a channel multiplier"]
    assert len(depthwise) == 1 and depthwise[0]["op"] == "QLinearConv"
    assert depthwise[0]["remedy"] == REMEDIES["depthwise conv with a channel multiplier"]
    assert speed["by_pattern"]["depthwise conv with a channel multiplier"] == depthwise[0]["ms"]
    assert 0.99 < sum(n["share"] for n in speed["slowest"]) <= 1.0 + 1e-9  # this graph has < 10 nodes
    assert "spends its time" in result.output and "depthwise-multiplier" in result.output
    result = runner.invoke(cli, ["diff", str(art), "--data", str(flat), "--images", "2",
                                 "--output-images", "2", "--no-output-cost", "--no-speed", "--json",
                                 str(tmp_path / "n.json")])
    assert result.exit_code == 0 and json.loads((tmp_path / "n.json").read_text())["speed"] is None
