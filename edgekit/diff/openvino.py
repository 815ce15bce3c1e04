"""Layer by layer, OpenVINO: the NNCF int8 IR against the fp32 IR, op by op with the same friendly name.

NNCF keeps the fp32 IR's friendly names and inserts FakeQuantize ops (``<op>/fq_output_0`` after an
activation, ``.../fq_weights_1`` on weights), so every op both IRs have is made an extra output
(``ov.Model.add_outputs``), and the value the int8 model passes on is the FakeQuantize's output
when the op has one. The loss each op adds is computed as for ONNX Runtime (edgekit.diff.layers).
Not done here: weight SQNR and which ops OpenVINO's CPU plugin runs in int8.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.diff.layers import SHARP_DROP_DB, _Energy
from edgekit.diff.report import LayerReport, TensorDiff

_NOT_LAYERS = {"Constant", "Result", "Convert"}
NOTE = "OpenVINO IR: weight SQNR and the int8 kernels of the CPU plugin are not reported"


@dataclass
class _Pair:
    name: str
    op: str
    inputs: list[str]  # friendly names of the fp32-comparable ops feeding it
    quantized: bool
    has_fake_quantize: bool
    total: _Energy
    rounding: _Energy


def _source(output) -> object:
    """The op behind an input, looking through a FakeQuantize to what it quantizes."""
    node = output.get_node()
    return node.input_value(0).get_node() if node.get_type_name() == "FakeQuantize" else node


def compare_openvino_layers(fp32_xml: Path, int8_xml: Path, images: Iterator[np.ndarray], *, fp32_label: str,
                            int8_label: str, threads: int) -> LayerReport:
    import openvino as ov

    core = ov.Core()
    fp32, int8 = core.read_model(str(fp32_xml)), core.read_model(str(int8_xml))
    int8_ops = {op.get_friendly_name(): op for op in int8.get_ordered_ops()}
    pairs, fp32_taps, int8_taps = [], [], []
    for op in fp32.get_ordered_ops():
        other = int8_ops.get(op.get_friendly_name())
        if op.get_type_name() in _NOT_LAYERS or op.get_output_size() != 1 or other is None \
                or other.get_type_name() != op.get_type_name():
            continue
        after = [t.get_node() for t in other.output(0).get_target_inputs()]
        fake_quantize = next((n for n in after if n.get_type_name() == "FakeQuantize"), None)
        sources = [other.input_value(i) for i in range(other.get_input_size())]
        pairs.append(_Pair(op.get_friendly_name(), op.get_type_name(),
                           [_source(s).get_friendly_name() for s in sources],
                           any(s.get_node().get_type_name() == "FakeQuantize" for s in sources),
                           fake_quantize is not None, _Energy(), _Energy()))
        fp32_taps.append(op.output(0))
        int8_taps.append((other.output(0), (fake_quantize or other).output(0)))
    fp32.add_outputs(fp32_taps)
    int8.add_outputs([tap for both in int8_taps for tap in both])
    # add_outputs reuses an output that is already one (the logits, an op without a FakeQuantize),
    # so each tap is found by the op and port its Result reads, not by position.
    fp32_at, int8_at = _result_index(fp32), _result_index(int8)
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads}
    requests = []
    for model in (fp32, int8):
        shape = list(model.input(0).get_partial_shape())
        shape[0] = 1
        model.reshape({model.input(0): ov.PartialShape(shape)})
        requests.append(core.compile_model(model, "CPU", config).create_infer_request())
    seen = 0
    for batch in images:
        for image in batch:
            reference = requests[0].infer({0: image[None]}).to_tuple()
            quantized = requests[1].infer({0: image[None]}).to_tuple()
            for pair, tap, (pre, post) in zip(pairs, fp32_taps, int8_taps):
                after = quantized[int8_at[_key(post)]]
                pair.total.add(reference[fp32_at[_key(tap)]], after)
                if pair.has_fake_quantize:
                    pair.rounding.add(quantized[int8_at[_key(pre)]], after)
            seen += 1
    return LayerReport.of("openvino", fp32_label, int8_label, seen, _rows(pairs), sharp_drop_db=SHARP_DROP_DB,
                          note=NOTE)


def _key(output) -> tuple[str, int]:
    return output.get_node().get_friendly_name(), output.get_index()


def _result_index(model) -> dict[tuple[str, int], int]:
    """(op, port) -> index of the model output (Result) that reads it."""
    return {_key(result.input_value(0)): index for index, result in enumerate(model.get_results())}


def _rows(pairs: list[_Pair]) -> list[TensorDiff]:
    by_name = {pair.name: pair for pair in pairs}
    rows = []
    for index, pair in enumerate(pairs):
        inputs = [by_name[name].total.sqnr_db() for name in pair.inputs if name in by_name]
        sqnr = pair.total.sqnr_db()
        input_sqnr = min(inputs) if inputs else None
        rows.append(TensorDiff(
            index=index, tensor=pair.name, op=pair.op, node=pair.name, folded=(), quantized=pair.quantized,
            kernel=None, int8_kernel=False, sqnr_db=sqnr, relative_error=pair.total.relative_error(),
            max_abs_diff=pair.total.max_abs,
            rounding_sqnr_db=pair.rounding.sqnr_db() if pair.has_fake_quantize else None,
            input_sqnr_db=input_sqnr, introduced_db=(input_sqnr - sqnr) if input_sqnr is not None else None))
    return rows
