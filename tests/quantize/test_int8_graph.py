"""An int8 weight that reaches two nodes: ONNX Runtime's exact x86 kernels refuse to load it until
edgekit gives each node its own DequantizeLinear, weight and zero point (edgekit.quantize.int8_graph).

The load failure is real ORT behaviour on x86 (the option is read on AVX2 and on VNNI CPUs alike);
benchmarks/ort_x64quantprecision_repro.py is the upstream reproducer.
"""

from __future__ import annotations

import platform

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgekit.core.errors import EdgekitError
from edgekit.quantize.int8_graph import exact_option_collisions, int8_weight_bits, separate_shared_weights
from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS
from edgekit.runtimes.sessions import ort_logits, ort_session

SHAPE = [1, 2, 3, 3]


def _shared_weight_model(weight: list[int], *, consumers: int = 2) -> onnx.ModelProto:
    """X -> ``consumers`` BatchNormalizations whose scale is one DequantizeLinear of an int8 weight -> Sum."""
    initializers = [numpy_helper.from_array(np.asarray(weight, np.int8), "w_q"),
                    numpy_helper.from_array(np.asarray(0.01, np.float32), "w_scale"),
                    numpy_helper.from_array(np.asarray(0, np.int8), "w_zero"),
                    *(numpy_helper.from_array(np.asarray(v, np.float32), n)
                      for n, v in (("bias", [0.1, -0.2]), ("mean", [0.0, 0.5]), ("var", [1.0, 2.0])))]
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], name="w_dq")]
    for index in range(consumers):
        nodes.append(helper.make_node("BatchNormalization", ["X", "w", "bias", "mean", "var"], [f"y{index}"],
                                      name=f"bn{index}"))
    nodes.append(helper.make_node("Sum", [f"y{i}" for i in range(consumers)], ["Y"], name="sum"))
    graph = helper.make_graph(nodes, "shared", [helper.make_tensor_value_info("X", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, SHAPE)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _save(model, path) -> str:
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return str(path)


x86_only = pytest.mark.skipif(platform.machine() != "x86_64", reason="ORT reads the option on x86 only")


@x86_only
def test_a_shared_int8_weight_fails_to_load_with_the_exact_option_and_loads_once_separated(tmp_path):
    model = _shared_weight_model([127, -100], consumers=3)
    broken = _save(model, tmp_path / "shared.onnx")
    assert exact_option_collisions(model) == ["w_q", "w_zero"]  # seen from the graph alone
    with pytest.raises(EdgekitError, match="x64quantprecision=1.*reaches several nodes"):
        ort_session(broken, config=EXACT_INT8_OPTIONS)  # ONNX Runtime's own refusal, explained
    inputs = np.random.default_rng(0).standard_normal((4, *SHAPE[1:]), dtype=np.float32)
    before = ort_logits(broken, inputs, batch_size=1, kernels="ort-default")

    assert separate_shared_weights(model) == 2  # the second and third BatchNormalization get a copy
    fixed = _save(model, tmp_path / "separated.onnx")
    assert exact_option_collisions(model) == []
    ort_session(fixed, config=EXACT_INT8_OPTIONS)
    assert np.array_equal(ort_logits(fixed, inputs, batch_size=1, kernels="ort-default"), before)  # same arithmetic
    dequantizers = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert len({n.input[0] for n in dequantizers}) == len({n.input[2] for n in dequantizers}) == 3


@x86_only
def test_weights_that_fit_seven_bits_are_left_alone_by_the_rewrite(tmp_path):
    model = _shared_weight_model([64, -64])
    assert exact_option_collisions(model) == [] and int8_weight_bits(model) == 7
    ort_session(_save(model, tmp_path / "seven_bit.onnx"), config=EXACT_INT8_OPTIONS)  # loads as it is
    assert int8_weight_bits(_shared_weight_model([65, 0])) == 8


def test_two_weights_sharing_one_zero_point_collide_too():
    model = _shared_weight_model([127, 1], consumers=1)
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.asarray([-90, 3], np.int8), "v_q"))
    graph.node.insert(1, helper.make_node("DequantizeLinear", ["v_q", "w_scale", "w_zero"], ["v"], name="v_dq"))
    graph.node[2].input[1] = "v"  # bn0 now scales by v; w feeds nothing but the zero point is shared
    graph.node.insert(3, helper.make_node("BatchNormalization", ["X", "w", "bias", "mean", "var"], ["y_w"]))
    graph.node[-1].input.append("y_w")
    assert exact_option_collisions(model) == ["w_zero"]
    separate_shared_weights(model)
    assert exact_option_collisions(model) == []
    onnx.checker.check_model(model)


@x86_only
def test_on_a_cpu_without_vnni_an_unloadable_int8_is_one_line_naming_file_option_and_cpu(pretend_cpu, tmp_path):
    """An artifact built before edgekit separated shared weights, opened where exact kernels are needed."""
    broken = _save(_shared_weight_model([127, -100]), tmp_path / "model_int8.onnx")
    pretend_cpu("avx2")
    with pytest.raises(EdgekitError) as raised:
        ort_session(broken)
    message = raised.value.one_line()
    assert "model_int8.onnx" in message and "session.x64quantprecision=1" in message
    assert "no AVX-512 VNNI" in message and "\n" not in message and "onnxruntime_src" not in message
    pretend_cpu("avx512_vnni")
    ort_session(broken)  # a VNNI CPU needs no option, and loads it
