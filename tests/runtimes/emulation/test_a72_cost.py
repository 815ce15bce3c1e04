"""The emulated Cortex-A72 cost estimate: instruction classes, the issue model, and real counts.

The unit tests need nothing. The end-to-end tests run a tiny conv net (fp32, and an ORT U8S8 QDQ
per-channel int8 copy as targets/rpi4.toml builds) under qemu-aarch64 with edgekit's counting
plugin; they need qemu-user, gcc and qemu-plugin.h (scripts/install-system-tools.sh) and the
emulated arm64 Python of test_arm64.py. About 12 s per estimate here.
"""

import os

import numpy as np
import pytest

from edgekit.core.errors import EdgekitError
from edgekit.runtimes.emulation import a72_cost
from edgekit.runtimes.emulation.a72_cost import a72_estimate_unavailable, estimate_a72_cycles, issue
from tests.runtimes.emulation.test_arm64 import fake_tools
from tests.system_tools import require_system_tool

SHAPE = (1, 3, 32, 32)


# ---- unit tests ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, expected_class, uops", [
    ("smull.8h", "simd_int_mul_long", {"F0": 1}),
    ("smlal2.4s", "simd_int_mul_long", {"F0": 1}),
    ("umlal.8h", "simd_int_mul_long", {"F0": 1}),
    ("mul.4s", "simd_int_mul", {"F0": 2}),
    ("sadalp.4s", "simd_int_accumulate_shift", {"F1": 1}),
    ("sshll.8h", "simd_int_accumulate_shift", {"F1": 1}),
    ("fmla.4s", "fp_fma", {"F": 2}),
    ("fmla.2s", "fp_fma", {"F": 1}),
    ("fmadd.s", "fp_fma", {"F": 1}),
    ("fadd.4s", "fp_other", {"F": 2}),
    ("add.4s", "simd_int_alu", {"F": 1}),
    ("sdot.4s", "simd_int_dot", {"F0": 1}),
    ("ldr.q", "load_q", {"L": 1}),
    ("ldp.q", "load_q", {"L": 2}),
    ("ldp.x", "load", {"L": 1}),
    ("ld1.2x16b", "load_vector", {"L": 2}),
    ("ld4.4x4s", "load_vector", {"L": 4, "F": 4}),
    ("str.x", "store", {"S": 1}),
    ("stp.x", "store", {"S": 2}),
    ("stp.q", "store_q", {"S": 4, "I": 1}),
    ("b.ne", "branch", {"B": 1}),
    ("ret", "branch", {"B": 1}),
    ("add.x", "int_alu", {"I": 1}),
    ("madd.x", "int_mul", {"M": 1}),
    ("umov.w", "fp_transfer", {"L": 1, "I": 1}),
    ("nop", "other", {}),
])
def test_each_kind_issues_on_the_a72_pipes_of_its_class(kind, expected_class, uops):
    assert issue(kind) == (expected_class, uops)


def test_cycles_are_the_busiest_pipe_or_decode():
    # Q-form FMLA: two µops on F0 or F1 -> one per cycle; SMULL: F0 only -> one per cycle, and
    # SADALP beside it goes to F1 for free; integer adds: two pipes, but decode takes three a cycle.
    assert a72_cost.cycles_bound({"fmla.4s": 1000}) == (1000, "F0+F1")
    assert a72_cost.cycles_bound({"smull.8h": 500, "smlal2.8h": 500, "sadalp.4s": 500}) == (1000, "F0")
    assert a72_cost.cycles_bound({"add.x": 3000}) == (1500, "I0/I1")
    cycles, bottleneck = a72_cost.cycles_bound({"add.x": 900, "fmla.2s": 900, "ldr.x": 900, "b.ne": 300})
    assert (cycles, bottleneck) == (1000, "decode")


def test_counts_per_inference_are_the_difference_between_the_marks():
    text = "mark 1\nfmla.4s 100\nadd.x 50\nmark 2\nfmla.4s 400\nadd.x 80\nsmull.8h 3\nmark end\nfmla.4s 401\n"
    marks = a72_cost.read_marks(text)
    assert a72_cost.per_inference(marks, 3) == {"fmla.4s": 100.0, "add.x": 10.0, "smull.8h": 1.0}
    with pytest.raises(EdgekitError, match="ended before both marks"):
        a72_cost.per_inference(a72_cost.read_marks("mark 1\nadd.x 5\nmark end\nadd.x 9\n"), 3)


def _assert_one_line(message, fragment):
    assert message and "\n" not in message and fragment in message, message


def test_without_a_plugin_capable_qemu_the_reason_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(fake_tools(tmp_path)))  # no qemu-aarch64 at all
    _assert_one_line(a72_estimate_unavailable(), "apt-get install qemu-user")
    # A qemu-aarch64 without -plugin (as qemu-user-static's) is not enough either.
    monkeypatch.setenv("PATH", str(fake_tools(tmp_path, **{"qemu-aarch64": 'echo "qemu-aarch64 version 7.2.0"'})))
    _assert_one_line(a72_estimate_unavailable(), "qemu-user-static cannot load plugins")
    with pytest.raises(EdgekitError) as caught:
        estimate_a72_cycles(tmp_path / "bin" / "qemu-aarch64", SHAPE)  # any existing file will do
    _assert_one_line(caught.value.one_line(), "apt-get install qemu-user")


def test_without_the_plugin_header_the_reason_names_the_set_up_script(monkeypatch, tmp_path):
    fake = ('case "$1" in -h) echo "-plugin [file=]file[,<argname>=<argvalue>]";; '
            '*) echo "qemu-aarch64 version 9.9.1";; esac')
    monkeypatch.setenv("PATH", f"{fake_tools(tmp_path, **{'qemu-aarch64': fake})}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("EDGEKIT_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEKIT_QEMU_PLUGIN_H", raising=False)
    if any(path.is_file() for path in (a72_cost.Path("/usr/include/qemu-plugin.h"),
                                       a72_cost.Path("/usr/include/qemu/qemu-plugin.h"))):
        pytest.skip("this machine has a system-wide qemu-plugin.h")
    message = a72_estimate_unavailable()
    _assert_one_line(message, "qemu-plugin.h for qemu 9.9.1")
    assert "install-system-tools.sh" in message


# ---- end to end under qemu -----------------------------------------------------------------------

def _tiny_convnet(path):
    """Five convs (one depthwise) with ReLU on 3x32x32, global pooling: like the CNNs edgekit ships."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, x = [], [], "input"
    for i, (cin, cout, k, group, stride) in enumerate([(3, 16, 3, 1, 1), (16, 32, 3, 1, 2), (32, 32, 3, 32, 1),
                                                       (32, 64, 1, 1, 1), (64, 64, 3, 1, 2)]):
        w = (rng.standard_normal((cout, cin // group, k, k)) * (2.0 / (cin // group * k * k)) ** 0.5)
        weights += [numpy_helper.from_array(w.astype(np.float32), f"w{i}"),
                    numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], pads=[k // 2] * 4, group=group,
                                   strides=[stride] * 2),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"])]
        x = f"r{i}"
    nodes += [helper.make_node("GlobalAveragePool", [x], ["pooled"]),
              helper.make_node("Flatten", ["pooled"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 64])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)


def _int8_copy(fp32, int8):
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.batches = iter([{"input": rng.standard_normal(SHAPE, dtype=np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)


@pytest.fixture(scope="module")
def estimates(tmp_path_factory):
    reason = a72_estimate_unavailable()
    require_system_tool(reason is None, reason or "")
    folder = tmp_path_factory.mktemp("a72")
    fp32, int8 = folder / "fp32.onnx", folder / "int8.onnx"
    _tiny_convnet(fp32)
    _int8_copy(fp32, int8)
    return {"fp32": estimate_a72_cycles(fp32, SHAPE), "int8": estimate_a72_cycles(int8, SHAPE),
            "fp32_again": estimate_a72_cycles(fp32, SHAPE), "folder": folder}


def test_counts_are_positive_and_the_estimate_says_what_it_is(estimates):
    for name in ("fp32", "int8"):
        estimate = estimates[name]
        assert estimate.instructions > 1e5 and estimate.cycles > 0
        assert all(count > 0 for count in estimate.counts_by_class.values())
        assert estimate.cpu == "cortex-a72" and estimate.qemu_version
        assert "estimate" in estimate.method and "memory effects" in estimate.method
        assert estimate.seconds < 120, f"one estimate of a 32x32 model took {estimate.seconds:.0f} s"


def test_int8_runs_integer_simd_multiplies_and_no_dot_product(estimates):
    int8 = estimates["int8"]
    kinds = int8.counts_by_kind
    assert int8.counts_by_class["simd_int_mul_long"] > 0.1 * int8.instructions
    assert int8.counts_by_class["simd_int_accumulate_shift"] > 0  # sadalp/uadalp
    assert any(kind.startswith(("smull", "umull", "smlal", "umlal")) for kind in kinds)
    assert any(kind.startswith(("sadalp", "uadalp")) for kind in kinds)
    assert not [kind for kind in kinds if kind.split(".")[0] in {"sdot", "udot", "usdot", "smmla", "ummla"}]
    assert "simd_int_dot" not in int8.counts_by_class
    # The int8 kernels are not FP: FMLA is (near) absent.
    assert int8.counts_by_class.get("fp_fma", 0) < 0.01 * int8.instructions


def test_fp32_runs_fmla_and_costs_more_compute_than_int8(estimates):
    fp32, int8 = estimates["fp32"], estimates["int8"]
    assert fp32.counts_by_kind.get("fmla.4s", 0) > 0.2 * fp32.instructions
    assert fp32.counts_by_class.get("simd_int_mul_long", 0) < 0.01 * fp32.instructions
    # SMULL/SMLAL do 8 multiply-adds a cycle on F0, Q-form FMLA 4 on F0+F1.
    assert int8.cycles < fp32.cycles


def test_per_inference_counts_are_stable_between_runs(estimates):
    first, again = estimates["fp32"], estimates["fp32_again"]
    assert abs(first.instructions - again.instructions) / first.instructions < 0.03
    assert abs(first.cycles - again.cycles) / first.cycles < 0.03


def test_a_model_that_fails_under_emulation_is_one_line(estimates):
    broken = estimates["folder"] / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(EdgekitError) as caught:
        estimate_a72_cycles(broken, SHAPE)
    _assert_one_line(caught.value.one_line(), "A72 cost run of broken.onnx failed")
