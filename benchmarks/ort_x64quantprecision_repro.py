"""ORT repro: session.x64quantprecision=1 fails to load a QDQ model whose int8 weight DQ has several consumers.

Pattern (opset 17; activation Q/DQ around the consumers is not needed to trigger it):

    w_q (int8 initializer, some |value| > 64) --DequantizeLinear--> w --+--> BatchNormalization(scale=w)
                                                                        +--> BatchNormalization(scale=w)

Loading it with the CPU EP and
    options.add_session_config_entry("session.x64quantprecision", "1")   # kOrtSessionOptionsAvx2PrecisionMode
fails in onnxruntime 1.31.1 (x86-64) with
    [ONNXRuntimeError] : 1 : FAIL : ... graph_utils.cc AddInitializerWithOrtValue ...
    graph.cc:4142 AddInitializedOrtValue Attempt to replace the existing tensor
and loads without the option. Two Conv nodes sharing one weight DequantizeLinear fail the same way.

Cause, as read in the ORT sources:
1. EnsureUniqueDQForNodeUnit duplicates a DequantizeLinear that has several consumers; the copies all
   read the same int8 initializer and the same zero-point initializer.
2. With the option on (it is read only where MlasPlatformU8S8Overflow() is true, which holds on AVX2 and
   also on AVX-512 VNNI hosts), QDQS8ToU8Transformer (qdq_transformer/qdq_s8_to_u8.cc) runs its
   "lone DQ" branch, QDQ::ConvertS8WeightToU8 (qdq_transformer/s8_to_u8.cc), on every copy.
3. Int8TensorProto2Uint8 (qdq_transformer/s8_to_u8.h) names the converted tensor
   `<int8 initializer name> + "_s8_2_u8"`, so the second copy adds an initializer that already exists.
   Weights within [-64, 64] are not converted, so 7-bit ("reduce_range") weights never hit it. When the
   weight is converted its zero point is too (force=true, same naming), so distinct int8 weights that
   share one zero-point initializer collide as well.

How it arises in practice: an exporter de-duplicates identical constants (e.g. the all-ones scale of
several BatchNormalization nodes) into one initializer, and onnxruntime.quantization.quantize_static
quantizes BatchNormalization's scale as an int8 weight (all ones -> 127) with one DequantizeLinear
feeding every BatchNormalization that used it. The "quantize_static" variant below does exactly that
(QDQ, QUInt8 activations, QInt8 weights, per_channel=True; the rank-1 BN scale falls back to per tensor).

Workaround used in edgekit: give every consumer of a quantized weight its own DequantizeLinear and its
own int8 and zero-point initializers (the float scale initializer may stay shared).

    .venv/bin/python benchmarks/ort_x64quantprecision_repro.py [--json OUT]

Exit code 0: ORT still behaves as described (the workaround is needed); 1: anything else (if every
variant loads with the option, ORT has fixed it and the workaround can be dropped).
Imports only numpy, onnx and onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # so that older ORT releases load the models too
CHANNELS = 2
INPUT_SHAPE = [1, CHANNELS, 2, 2]
OPTION = "session.x64quantprecision"


def initializer(name: str, value) -> TensorProto:
    return numpy_helper.from_array(np.asarray(value), name)


def single_output_model(nodes: list, initializers: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "repro",
                              [helper.make_tensor_value_info("X", TensorProto.FLOAT, INPUT_SHAPE)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, INPUT_SHAPE)],
                              initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def weight_dq(suffix: str, weight: str, zero_point: str) -> onnx.NodeProto:
    return helper.make_node("DequantizeLinear", [weight, "w_scale", zero_point], ["w" + suffix],
                            name="dq" + suffix, axis=0)


def batchnorm_pair(weight_dq_nodes: list, scale_1: str, scale_2: str, int8_initializers: dict) -> onnx.ModelProto:
    """X -> BatchNormalization(scale=scale_1), BatchNormalization(scale=scale_2) -> Add -> Y."""
    nodes = weight_dq_nodes + [
        helper.make_node("BatchNormalization", ["X", scale_1, "bn_bias", "bn_mean", "bn_var"], ["bn1"], name="bn1"),
        helper.make_node("BatchNormalization", ["X", scale_2, "bn_bias", "bn_mean", "bn_var"], ["bn2"], name="bn2"),
        helper.make_node("Add", ["bn1", "bn2"], ["Y"], name="add"),
    ]
    initializers = [initializer(name, value) for name, value in int8_initializers.items()] + [
        initializer("w_scale", np.full(CHANNELS, 1 / 127, np.float32)),
        initializer("bn_bias", np.zeros(CHANNELS, np.float32)),
        initializer("bn_mean", np.zeros(CHANNELS, np.float32)),
        initializer("bn_var", np.ones(CHANNELS, np.float32)),
    ]
    return single_output_model(nodes, initializers)


def int8(value: int, shape=(CHANNELS,)) -> np.ndarray:
    return np.full(shape, value, np.int8)


def bn_one_dq_two_consumers(weight_value: int = 127) -> onnx.ModelProto:
    return batchnorm_pair([weight_dq("", "w_q", "w_zp")], "w", "w",
                          {"w_q": int8(weight_value), "w_zp": int8(0)})


def bn_dq_per_consumer_shared_int8() -> onnx.ModelProto:
    # What step 1 above produces itself: separate DQ nodes, one int8 initializer.
    return batchnorm_pair([weight_dq("1", "w_q", "w_zp"), weight_dq("2", "w_q", "w_zp")], "w1", "w2",
                          {"w_q": int8(127), "w_zp": int8(0)})


def bn_dq_per_consumer_shared_zero_point() -> onnx.ModelProto:
    return batchnorm_pair([weight_dq("1", "w_q1", "w_zp"), weight_dq("2", "w_q2", "w_zp")], "w1", "w2",
                          {"w_q1": int8(127), "w_q2": int8(127), "w_zp": int8(0)})


def bn_dq_per_consumer() -> onnx.ModelProto:
    # The workaround: own DQ, own int8 weight, own zero point per consumer.
    return batchnorm_pair([weight_dq("1", "w_q1", "w_zp1"), weight_dq("2", "w_q2", "w_zp2")], "w1", "w2",
                          {"w_q1": int8(127), "w_q2": int8(127), "w_zp1": int8(0), "w_zp2": int8(0)})


def conv_one_dq_two_consumers() -> onnx.ModelProto:
    """X -> Conv(W), Conv(W) -> Add -> Y with W = DequantizeLinear(int8 1x1 kernel of 127)."""
    nodes = [
        weight_dq("", "w_q", "w_zp"),
        helper.make_node("Conv", ["X", "w"], ["conv1"], name="conv1"),
        helper.make_node("Conv", ["X", "w"], ["conv2"], name="conv2"),
        helper.make_node("Add", ["conv1", "conv2"], ["Y"], name="add"),
    ]
    return single_output_model(nodes, [initializer("w_q", int8(127, (CHANNELS, CHANNELS, 1, 1))),
                                       initializer("w_zp", int8(0)),
                                       initializer("w_scale", np.full(CHANNELS, 1 / 127, np.float32))])


def quantize_static_shared_bn_scale(folder: Path) -> Path:
    """Float X -> BN, BN (one shared all-ones scale initializer) -> Add, quantized by ORT's own quantizer."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    nodes = [
        helper.make_node("BatchNormalization", ["X", "bn_scale", "bn1_bias", "bn_mean", "bn_var"], ["bn1"], name="bn1"),
        helper.make_node("BatchNormalization", ["X", "bn_scale", "bn2_bias", "bn_mean", "bn_var"], ["bn2"], name="bn2"),
        helper.make_node("Add", ["bn1", "bn2"], ["Y"], name="add"),
    ]
    float_model = single_output_model(nodes, [
        initializer("bn_scale", np.ones(CHANNELS, np.float32)),
        initializer("bn1_bias", np.full(CHANNELS, 0.1, np.float32)),
        initializer("bn2_bias", np.full(CHANNELS, -0.1, np.float32)),
        initializer("bn_mean", np.zeros(CHANNELS, np.float32)),
        initializer("bn_var", np.ones(CHANNELS, np.float32)),
    ])
    float_path = folder / "quantize_static_float.onnx"
    onnx.save(float_model, float_path)

    class RandomInputs(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"X": rng.standard_normal(INPUT_SHAPE, dtype=np.float32)} for _ in range(4)])

        def get_next(self):
            return next(self.batches, None)

    quantized_path = folder / "quantize_static_int8.onnx"
    # Its warnings (no pre-processing; axis 1 out of range for the rank-1 BN scale, so that weight is
    # quantized per tensor) are noise here.
    logging.getLogger().setLevel(logging.ERROR)
    quantize_static(str(float_path), str(quantized_path), RandomInputs(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    return quantized_path


def weight_dqs_with_several_consumers(model: onnx.ModelProto) -> int:
    """DequantizeLinear nodes of an int8 initializer whose output feeds more than one node."""
    int8_names = {t.name for t in model.graph.initializer if t.data_type == TensorProto.INT8}
    consumers: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    return sum(1 for node in model.graph.node
               if node.op_type == "DequantizeLinear" and node.input[0] in int8_names
               and consumers.get(node.output[0], 0) > 1)


def saved(build):
    def build_into(folder: Path) -> Path:
        path = folder / "model.onnx"
        onnx.save(build(), path)
        return path
    return build_into


def load(path: Path, with_option: bool):
    options = ort.SessionOptions()
    if with_option:
        options.add_session_config_entry(OPTION, "1")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"]), None
    except Exception as error:  # ORT raises its own Fail/RuntimeException types
        return None, (str(error).splitlines() or [repr(error)])[0]


def short_error(error: str | None) -> str:
    if error is None:
        return "loads"
    return "FAIL: " + error.rsplit("FAIL : ", 1)[-1].strip()


def cpu_features() -> dict:
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    return {name: bool(features.get(name, False)) for name in ("AVX2", "AVX512F", "AVX512VNNI")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    ort.set_default_logger_severity(4)  # the load errors are reported in the table, not as log lines

    # (variant, what it is, builds it into a folder and returns the model path, expected to fail with the option)
    variants = [
        ("bn_one_dq_two_consumers", "1 DQ (int8 127) -> scale of 2 BatchNormalization",
         saved(bn_one_dq_two_consumers), True),
        ("bn_dq_per_consumer_shared_int8", "2 DQ, 1 shared int8 initializer",
         saved(bn_dq_per_consumer_shared_int8), True),
        ("bn_dq_per_consumer_shared_zero_point", "2 DQ, own int8, 1 shared zero point",
         saved(bn_dq_per_consumer_shared_zero_point), True),
        ("bn_dq_per_consumer", "2 DQ, own int8 + zero point (the workaround)", saved(bn_dq_per_consumer), False),
        ("bn_one_dq_two_consumers_within_64", "1 DQ (int8 64) -> scale of 2 BatchNormalization",
         saved(lambda: bn_one_dq_two_consumers(weight_value=64)), False),
        ("conv_one_dq_two_consumers", "1 DQ (int8 127) -> weight of 2 Conv", saved(conv_one_dq_two_consumers), True),
        ("quantize_static_shared_bn_scale", "quantize_static of 2 BatchNormalization sharing a scale",
         quantize_static_shared_bn_scale, True),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, description, build, expect_fail in variants:
            folder = Path(tmp) / name
            folder.mkdir()
            path = build(folder)
            without_session, without_error = load(path, with_option=False)
            with_session, with_error = load(path, with_option=True)
            outputs_equal = None
            if without_session is not None and with_session is not None:
                x = np.random.default_rng(1).standard_normal(INPUT_SHAPE, dtype=np.float32)
                outputs_equal = bool(np.array_equal(without_session.run(None, {"X": x})[0],
                                                    with_session.run(None, {"X": x})[0]))
            as_expected = (without_error is None and (with_error is not None) == expect_fail
                           and outputs_equal is not False)
            rows.append({"variant": name, "description": description,
                         "weight_dqs_with_several_consumers": weight_dqs_with_several_consumers(onnx.load(path)),
                         "expected_to_fail_with_option": expect_fail,
                         "without_option": {"loads": without_error is None, "error": without_error},
                         "with_option": {"loads": with_error is None, "error": with_error},
                         "outputs_equal": outputs_equal, "as_expected": as_expected})

    environment = {"onnxruntime": ort.__version__, "onnx": onnx.__version__, "numpy": np.__version__,
                   "python": platform.python_version(), "machine": platform.machine(),
                   "cpu_features": cpu_features()}
    print("  ".join(f"{key}={value}" for key, value in environment.items() if key != "cpu_features"))
    print("numpy CPU features:", "  ".join(f"{key}={value}" for key, value in environment["cpu_features"].items()))
    print(f"option: {OPTION}=1\n")
    header = f"{'variant':38} {'DQs >1 use':>10}  {'outputs':7}  {'as expected':11}  {'without option':14}  with option"
    print(header)
    print("-" * (len(header) + 60))
    for row in rows:
        equal = {None: "-", True: "equal", False: "DIFFER"}[row["outputs_equal"]]
        print(f"{row['variant']:38} {row['weight_dqs_with_several_consumers']:>10}  {equal:7}  "
              f"{'yes' if row['as_expected'] else 'NO':11}  {short_error(row['without_option']['error']):14}  "
              f"{short_error(row['with_option']['error'])}")
    for row in rows:
        if row["with_option"]["error"]:
            print(f"\nfull error ({row['variant']}, with option):\n  {row['with_option']['error']}")
            break

    matches = all(row["as_expected"] for row in rows)
    fixed = all(row["without_option"]["loads"] and row["with_option"]["loads"] for row in rows)
    if matches:
        verdict = ("bug present: a weight DequantizeLinear with several consumers fails to load with the "
                   "option; keep the workaround (one DQ + own int8 and zero-point initializers per consumer)")
    elif fixed:
        verdict = (f"fixed in onnxruntime {ort.__version__}: every variant loads with the option; "
                   "the workaround can be dropped")
    else:
        verdict = "unexpected results: see the rows marked NO"
    print("\n" + verdict)

    if args.json:
        Path(args.json).write_text(json.dumps({"environment": environment, "option": OPTION, "variants": rows,
                                               "matches_expectation": matches, "fixed": fixed,
                                               "verdict": verdict}, indent=2) + "\n")
    return 0 if matches else 1


if __name__ == "__main__":
    sys.exit(main())
