"""Layer by layer, ONNX Runtime: every tensor of the int8 QDQ model against the fp32 model's same tensor.

ONNX Runtime's own debugging library (``onnxruntime.quantization.qdq_loss_debug``) does the model
surgery and the matching: ``modify_model_output_intermediate_tensors`` makes every float tensor an
output, ``collect_activations`` runs a model with graph optimisations off (so every Q/DQ pair
still exists), ``create_activation_matching`` pairs each quantized tensor's value before its
QuantizeLinear (``pre_qdq``), after its DequantizeLinear (``post_qdq``) and in the float model
(``float``), and ``create_weight_matching``/``compute_weight_error`` give each weight's SQNR.

Its ``compute_activation_error`` wants every batch of every tensor in memory at once. Here each
batch is collected, matched, reduced to sums of squares and dropped, so memory is one batch of
intermediates (the batch is sized from the first image's intermediates), and the SQNR is the same
formula (signal energy over noise energy, over all images).

What causes loss and what inherits it: a tensor's error is what its inputs brought plus what its
node added (weight rounding, its own output rounding). ``introduced_db`` is the SQNR of the node's
worst activation input minus the SQNR of its output, so the layer that *adds* the error ranks first
and the layers downstream, which only carry it, do not.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.diff.report import LayerReport, TensorDiff, WeightDiff

# One batch of intermediates of both models may take about this much memory.
BATCH_BYTES_BUDGET = 512 * 1024**2
MAX_BATCH = 32
# A node that takes this many dB of SQNR off its inputs is where int8 loss starts.
SHARP_DROP_DB = 6.0
_EPS_ENERGY = float(np.finfo(float).eps) ** 2  # qdq_loss_debug's floor (eps on the norms), squared
# ORT's fused int8 kernels (CPU EP, com.microsoft and standard domains).
_INT8_KERNELS = {"QGemm", "QAttention", "MatMulInteger", "ConvInteger", "MatMulIntegerToFloat",
                 "DynamicQuantizeMatMul", "QOrderedMatMul"}
# Graph transformers add these to a fused node's name (1.31: the NHWC layout pass adds "_token_<n>").
_TRANSFORMER_SUFFIX = re.compile(r"(_token_\d+)+$")


@dataclass
class _Energy:
    """Running sums for one comparison: signal energy, noise energy, largest |difference|."""

    signal: float = 0.0
    noise: float = 0.0
    max_abs: float = 0.0

    def add(self, reference: np.ndarray, other: np.ndarray) -> None:
        reference = reference.astype(np.float64, copy=False).ravel()
        diff = reference - other.astype(np.float64, copy=False).ravel()
        self.signal += float(reference @ reference)
        self.noise += float(diff @ diff)
        if diff.size:
            self.max_abs = max(self.max_abs, float(np.abs(diff).max()))

    def sqnr_db(self) -> float:
        return 10 * math.log10(max(self.signal, _EPS_ENERGY) / max(self.noise, _EPS_ENERGY))

    def relative_error(self) -> float:
        return math.sqrt(max(self.noise, _EPS_ENERGY) / max(self.signal, _EPS_ENERGY))


@dataclass
class _Tracked:
    tensor: str
    int8_name: str  # the int8 model's tensor to compare (after Q/DQ when it has a pair)
    pre_qdq: str | None  # the int8 model's tensor before its QuantizeLinear
    # When the int8 graph folded a Relu/Clip into the producer, its QuantizeLinear's clamp at the
    # range's low end *is* that activation; the rounding is measured against max(pre_qdq, floor).
    floor: float | None = None
    total: _Energy = field(default_factory=_Energy)
    rounding: _Energy = field(default_factory=_Energy)


def _producers(graph) -> dict[str, object]:
    return {name: node for node in graph.node for name in node.output}


def _original_name(name: str) -> str:
    from onnxruntime.quantization.quant_utils import (
        DEQUANT_OUTPUT_SUFFIX,
        QUANT_INPUT_SUFFIX,
    )

    for suffix in (DEQUANT_OUTPUT_SUFFIX + "_1", DEQUANT_OUTPUT_SUFFIX, QUANT_INPUT_SUFFIX):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _fused_kernels(int8_path: Path, scratch: Path) -> dict[str, str]:
    """Node name of the int8 model -> the kernel ONNX Runtime runs it as after its graph
    optimisations (QLinearConv, QGemm, ... when fused into int8; the same op when it runs in fp32)."""
    import onnx
    import onnxruntime as ort

    from edgekit.runtimes.board_runner import ort_session_options

    options = ort_session_options(ort, 0)  # what edgekit's inference runs, exact int8 options included
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(scratch / "int8_optimised.onnx")
    ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"])
    kernels = {}
    for node in onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node:
        kernels.setdefault(_TRANSFORMER_SUFFIX.sub("", node.name), node.op_type)
    return kernels


def is_int8_kernel(op_type: str | None) -> bool:
    return bool(op_type) and (op_type.startswith("QLinear") or op_type in _INT8_KERNELS)


def _weights_by_node(graph, errors: dict[str, float]) -> dict[str, list[str]]:
    """int8 node name -> the weights (matched by create_weight_matching) it consumes through a DQ."""
    from onnxruntime.quantization.quant_utils import TENSOR_NAME_QUANT_SUFFIX

    dq_weight = {}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0].endswith(TENSOR_NAME_QUANT_SUFFIX):
            name = node.input[0][: -len(TENSOR_NAME_QUANT_SUFFIX)]
            if name in errors:
                dq_weight[node.output[0]] = name
    return {node.name: [dq_weight[i] for i in node.input if i in dq_weight] for node in graph.node}


def _batches(batches: Iterator[np.ndarray], first: int, budget_per_image: Callable[[], int | None]):
    """Re-chunk the image stream: ``first`` images, then as many as the measured budget allows."""
    pending = np.empty((0,), dtype=np.float32)
    size = first
    for array in batches:
        pending = array if pending.size == 0 else np.concatenate([pending, array])
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
            per_image = budget_per_image()
            if per_image:
                size = max(1, min(MAX_BATCH, BATCH_BYTES_BUDGET // per_image))
    if len(pending):
        yield pending


def compare_layers(fp32_path: Path, int8_path: Path, images: Iterator[np.ndarray], *, scratch: Path,
                   fp32_label: str, int8_label: str, static_batch: int | None = None) -> LayerReport:
    """Per-tensor SQNR of ``int8_path`` (QDQ) against ``fp32_path`` over the image batches given."""
    import onnx
    from onnxruntime.quantization import qdq_loss_debug as debug

    fp32_aug, int8_aug = scratch / "fp32_all_tensors.onnx", scratch / "int8_all_tensors.onnx"
    debug.modify_model_output_intermediate_tensors(str(fp32_path), str(fp32_aug))
    debug.modify_model_output_intermediate_tensors(str(int8_path), str(int8_aug))
    fp32_graph = onnx.load(str(fp32_path), load_external_data=False).graph
    int8_graph = onnx.load(str(int8_path), load_external_data=False).graph
    input_name = fp32_graph.input[0].name

    tracked: list[_Tracked] | None = None
    seen, per_image_bytes = 0, [None]
    for batch in _batches(images, static_batch or 1, lambda: None if static_batch else per_image_bytes[0]):
        feed = [{input_name: np.ascontiguousarray(batch)}]
        float_acts = debug.collect_activations(str(fp32_aug), feed)
        int8_acts = debug.collect_activations(str(int8_aug), feed)
        matching = debug.create_activation_matching(int8_acts, float_acts)
        if tracked is None:
            tracked = _track(fp32_graph, int8_graph, float_acts, int8_acts, matching)
            bytes_now = sum(a[0].nbytes for a in float_acts.values()) + sum(a[0].nbytes for a in int8_acts.values())
            per_image_bytes[0] = max(1, bytes_now // len(batch))
        for item in tracked:
            item.total.add(float_acts[item.tensor][0], int8_acts[item.int8_name][0])
            if item.pre_qdq is not None:
                pre = int8_acts[item.pre_qdq][0]
                item.rounding.add(pre if item.floor is None else np.maximum(pre, item.floor),
                                  int8_acts[item.int8_name][0])
        seen += len(batch)
        del float_acts, int8_acts, matching
    weight_errors = debug.compute_weight_error(debug.create_weight_matching(str(fp32_path), str(int8_path)))
    tensors = _rows(tracked or [], fp32_graph, int8_graph, weight_errors, _fused_kernels(int8_path, scratch))
    return LayerReport.of("onnxruntime", fp32_label, int8_label, seen, tensors,
                          tuple(WeightDiff(name, sqnr) for name, sqnr in weight_errors.items()),
                          sharp_drop_db=SHARP_DROP_DB)


def _track(fp32_graph, int8_graph, float_acts: dict, int8_acts: dict, matching: dict) -> list[_Tracked]:
    """The tensors both models compute, in the fp32 graph's order (graph input first)."""
    fp32_producer, int8_producer = _producers(fp32_graph), _producers(int8_graph)
    names = [fp32_graph.input[0].name] + [out for node in fp32_graph.node for out in node.output]
    key_of = {id(value): key for key, value in int8_acts.items()}
    tracked = []
    for name in dict.fromkeys(names):
        if name not in float_acts:
            continue  # not a float tensor
        pair = matching.get(name)
        if pair is not None and "float" in pair:
            pre = key_of[id(pair["pre_qdq"])]
            fp32_node, int8_node = fp32_producer.get(name), int8_producer.get(pre)
            folded = (fp32_node is not None and fp32_node.op_type in ("Relu", "Clip")
                      and (int8_node is None or int8_node.op_type != fp32_node.op_type))
            floor = _quantized_floor(int8_graph, pre) if folded else None
            tracked.append(_Tracked(name, key_of[id(pair["post_qdq"])], pre, floor))
        elif name in int8_acts:
            tracked.append(_Tracked(name, name, None))  # runs unquantized in the int8 model
        # else: the int8 graph folded it away (a Relu's input once the Relu merged into its Conv)
    return tracked


def _quantized_floor(graph, tensor: str) -> float | None:
    """The lowest value the QuantizeLinear of ``tensor`` can represent: (qmin - zero point) x scale."""
    from onnx import numpy_helper

    constants = {init.name: init for init in graph.initializer}
    node = next((n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == tensor), None)
    if node is None or len(node.input) < 3 or node.input[1] not in constants or node.input[2] not in constants:
        return None
    scale = numpy_helper.to_array(constants[node.input[1]])
    zero_point = numpy_helper.to_array(constants[node.input[2]])
    if scale.size != 1:
        return None
    return float((np.iinfo(zero_point.dtype).min - zero_point.astype(np.int64).item()) * scale.item())


def _rows(tracked: list[_Tracked], fp32_graph, int8_graph, weight_errors: dict[str, float],
          kernels: dict[str, str]) -> list[TensorDiff]:
    fp32_producer, int8_producer = _producers(fp32_graph), _producers(int8_graph)
    constants = {init.name for init in int8_graph.initializer}
    weights_of = _weights_by_node(int8_graph, weight_errors)
    by_name = {item.tensor: item for item in tracked}
    rows = []
    for index, item in enumerate(tracked):
        node = int8_producer.get(item.pre_qdq or item.int8_name)
        if node is not None and node.op_type == "DequantizeLinear":  # a QDQ pair on a graph input
            node = None
        inputs = [by_name[_original_name(name)].total.sqnr_db() for name in (node.input if node is not None else ())
                  if _original_name(name) in by_name]
        fp32_node = fp32_producer.get(item.tensor)
        op = node.op_type if node is not None else "input"
        folded = tuple(n for n in ([fp32_node.op_type] if fp32_node is not None else []) if n != op)
        quantized = node is not None and item.pre_qdq is not None and _consumes_dequantized(node, int8_producer, constants)
        weights = weights_of.get(node.name, []) if node is not None else []
        kernel = kernels.get(node.name) if node is not None else None
        sqnr = item.total.sqnr_db()
        input_sqnr = min(inputs) if inputs else None
        rows.append(TensorDiff(
            index=index, tensor=item.tensor, op=op, node=node.name if node is not None else None, folded=folded,
            quantized=quantized, kernel=kernel, int8_kernel=is_int8_kernel(kernel), sqnr_db=sqnr,
            relative_error=item.total.relative_error(), max_abs_diff=item.total.max_abs,
            rounding_sqnr_db=item.rounding.sqnr_db() if item.pre_qdq is not None else None,
            input_sqnr_db=input_sqnr, introduced_db=(input_sqnr - sqnr) if input_sqnr is not None else None,
            weights=tuple(weights),
            weight_sqnr_db=min(weight_errors[w] for w in weights) if weights else None))
    return rows


def _consumes_dequantized(node, producer: dict, constants: set[str]) -> bool:
    """Every input of ``node`` that is not a plain constant (a shape, an axis) comes out of a DequantizeLinear."""
    sources = [producer.get(name) for name in node.input if name and name not in constants]
    return bool(sources) and all(s is not None and s.op_type == "DequantizeLinear" for s in sources)
