"""The rewrite stage on tiny graphs: exact where the pattern matches, nothing changed where it
half-matches or where parity would not hold, and a failing rule never fails the build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper
from onnxscript import ir

from edgekit.builder import export
from edgekit.cli.commands import cli
from edgekit.core.errors import EdgekitError
from edgekit.rewrite import (
    ExactRewrite,
    GraphRewrite,
    list_rewrites,
    register_rewrite,
    rewrite_onnx,
    stage,
)
from edgekit.runtimes.sessions import ort_logits

INPUTS = np.random.default_rng(0).standard_normal((4, 3, 12, 12), dtype=np.float32)


class DepthwiseNet(torch.nn.Module):
    """A depthwise conv with channel multiplier 3 between two dense convs (as vgg19 col6-8 have)."""

    def __init__(self):
        super().__init__()
        self.spread = torch.nn.Conv2d(3, 9, 3, padding=1, groups=3)
        self.mix = torch.nn.Conv2d(9, 5, 1)

    def forward(self, x):
        return self.mix(torch.relu(self.spread(x))).mean((2, 3))


def exported(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "depthwise.onnx"
    export.export_onnx(DepthwiseNet().eval(), INPUTS[:2], path)
    return path


def op_types(path: Path) -> list[str]:
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def test_a_depthwise_multiplier_becomes_a_gather_and_a_multiplier_1_depthwise_conv(tmp_path):
    source = exported(tmp_path)
    record = rewrite_onnx(source, tmp_path / "out.onnx", INPUTS, scratch=tmp_path)
    (item,) = [r for r in record.rewrites if r.name == "depthwise-multiplier"]
    assert item.applied and item.matches == 1 and item.parity_max_normalised_diff <= 1e-6
    graph = onnx.load(str(tmp_path / "out.onnx")).graph
    assert [n.op_type for n in graph.node].count("Gather") == 1
    conv = next(n for n in graph.node if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute))
    assert helper.get_attribute_value(next(a for a in conv.attribute if a.name == "group")) == 9
    gather = next(n for n in graph.node if n.op_type == "Gather")
    indices = next(t for t in graph.initializer if t.name == gather.input[1])
    assert onnx.numpy_helper.to_array(indices).tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    np.testing.assert_allclose(ort_logits(tmp_path / "out.onnx", INPUTS), ort_logits(source, INPUTS), atol=1e-5)
    # The dynamic batch axis and the names every later stage relies on survive the rewrite.
    assert [i.name for i in graph.input] == [export.INPUT_NAME] and [o.name for o in graph.output] == [export.OUTPUT_NAME]
    assert ort_logits(tmp_path / "out.onnx", INPUTS[:3]).shape == (3, 5)
    assert record.nodes_after == record.nodes_before + 1


def test_a_depthwise_conv_whose_weight_is_not_a_constant_is_a_near_miss_left_as_it_is(tmp_path):
    """Half a match: shaped like the pattern, but its weight is a graph input (it could change)."""
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4, 6, 6])
    w = helper.make_tensor_value_info("weight", TensorProto.FLOAT, [8, 1, 3, 3])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Conv", ["input", "weight"], ["logits"], group=4, name="dw")],
                              "g", [x, w], [y])
    source = tmp_path / "half.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(source))
    rule = list_rewrites()[0].make()
    record, candidate = stage._try(GraphRewrite("depthwise-multiplier", "p", lambda: rule),
                                   ir.load(str(source)), None, None, tmp_path / "c.onnx")
    assert candidate is None and not record.applied and record.reason == "no match"
    assert record.near_misses == ("dw: its weight is not a constant",)


class _Breaks(ExactRewrite):
    """Relu -> Neg: a wrong 'rewrite', to prove the parity gate."""

    def pattern(self, op, x):
        return op.Relu(x)

    def rewrite(self, op, x):
        return op.Neg(x)


class _Raises(ExactRewrite):
    def pattern(self, op, x):
        return op.Relu(x)

    def rewrite(self, op, x):
        raise ValueError("cannot handle this graph")


def test_a_rewrite_that_breaks_parity_or_raises_is_skipped_with_its_reason(tmp_path, monkeypatch):
    source = exported(tmp_path)
    monkeypatch.setattr(stage, "list_rewrites", lambda: [GraphRewrite("breaks", "Relu -> Neg", _Breaks),
                                                         GraphRewrite("raises", "Relu", _Raises)])
    record = rewrite_onnx(source, tmp_path / "out.onnx", INPUTS, scratch=tmp_path)
    breaks, raises = record.rewrites
    assert not breaks.applied and breaks.matches == 1 and "fp32 parity" in breaks.reason
    assert breaks.parity_max_normalised_diff > 1e-5
    assert not raises.applied and raises.reason.startswith("the rewrite failed: ") and "cannot handle" in raises.reason
    assert op_types(tmp_path / "out.onnx") == op_types(source)  # nothing of either is left in the graph
    assert (tmp_path / "out.onnx").read_bytes() == source.read_bytes()


def test_gains_are_timed_before_and_after_each_kept_rewrite(tmp_path):
    source = exported(tmp_path)
    timed = []

    def fake_timer(path):  # the build passes the backend's latency; this test only checks the wiring
        timed.append(Path(path).name)
        return 2.0 if Path(path) == source else 1.0

    record = rewrite_onnx(source, tmp_path / "out.onnx", INPUTS, scratch=tmp_path, time_fp32=fake_timer,
                          timing="fake")
    (item,) = [r for r in record.rewrites if r.applied]
    assert (item.fp32_ms_before, item.fp32_ms_after) == (2.0, 1.0) and record.timing == "fake"
    assert len(timed) == 2 * stage.TIMING_ROUNDS and timed.count(source.name) == stage.TIMING_ROUNDS


def test_a_rewrite_name_is_registered_once():
    with pytest.raises(EdgekitError, match="registered twice"):
        register_rewrite("depthwise-multiplier", pattern="again")(_Breaks)


def test_an_onnx_file_given_to_build_gets_the_same_rewrites_and_no_rewrite_turns_them_off(tmp_path):
    source = exported(tmp_path)
    runner = CliRunner()
    for out, extra in ((tmp_path / "a", []), (tmp_path / "b", ["--no-rewrite"])):
        result = runner.invoke(cli, ["build", "-m", str(source), "-t", "cpu", "--fp32-only", "--out", str(out),
                                     "--no-latency-check", *extra])
        assert result.exit_code == 0, result.output
    rewritten = json.loads((tmp_path / "a" / "manifest.json").read_text())["rewrite"]
    assert [(r["name"], r["applied"], r["matches"]) for r in rewritten["rewrites"]] == [("depthwise-multiplier", True, 1)]
    assert rewritten["timing"] == "not timed: --no-latency-check"
    assert "Gather" in op_types(tmp_path / "a" / "model_fp32.onnx")
    assert "`depthwise-multiplier`" in (tmp_path / "a" / "REPORT.md").read_text()
    assert "rewrite" not in json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert "Gather" not in op_types(tmp_path / "b" / "model_fp32.onnx")
    assert "Graph rewrites: off (--no-rewrite)" in (tmp_path / "b" / "REPORT.md").read_text()


def test_a_registry_model_ships_rewritten_with_its_gain_timed_where_the_build_can_time(tmp_path):
    from edgekit.builder.pipeline import BuildOptions, build_artifact
    from edgekit.targets.isa import why_latency_not_measured_here
    from edgekit.targets.profiles import load_target

    out = build_artifact("vgg19_c32_col6", "cpu", tmp_path / "art", options=BuildOptions(fp32_only=True))
    record = json.loads((out / "manifest.json").read_text())["rewrite"]
    (item,) = record["rewrites"]
    assert item["applied"] and item["matches"] == 16 and item["parity_max_normalised_diff"] <= 1e-5
    why = why_latency_not_measured_here(load_target("cpu"))
    if why is None:
        assert record["timing"].startswith("fp32 p50 on this host") and item["fp32_ms_before"] > 0
    else:  # e.g. this suite under qemu: no timing, and the record says why
        assert record["timing"] == f"not timed: {why}" and "fp32_ms_before" not in item
    assert op_types(out / "model_fp32.onnx").count("Gather") == 16
