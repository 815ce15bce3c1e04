"""Where Q/DQ pairs go in an ONNX graph: NNCF-like rules, and fp32 fallback of the most sensitive layers.

ORT quantizes every op type it supports. NNCF instead (nncf/quantization/algorithms/min_max, CPU
patterns) leaves the inputs of Sigmoid unquantized, treats a SiLU (x * sigmoid(x)) as part of the
layer before it, and ignores a squeeze-excitation block's pooling and gating Mul. Those are the
tensors where one uint8 rounding per step costs the most accuracy in EfficientNet-style networks.

Fallback works on *tensors*: an activation keeps fp32 only if its producer and every consumer skip
quantization (ORT puts a Q/DQ pair on a tensor as soon as any node touching it is quantized), so a
fallback unit is that whole group of nodes; a weight's unit is the node that reads it.
"""

from __future__ import annotations

import math
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.core.progress import progress

SE_POOLS = {"GlobalAveragePool", "ReduceMean"}
# Ops ORT folds into the quantized output of the layer before them (Conv+Relu is one QLinearConv): to
# keep such an op's output fp32, the layer that feeds it must skip quantization too.
FUSED_ACTIVATIONS = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Mul"}
FUSION_DEPTH = 3
SE_SEARCH_DEPTH = 4  # nodes between an SE block's pooling and its Sigmoid


@dataclass(frozen=True)
class FallbackUnit:
    """Nodes that must all stay fp32 to take one tensor's quantization error out; ``sqnr_db`` is
    that error (signal-to-quantization-noise ratio of the tensor; lower is worse)."""

    tensor: str
    kind: str  # "activation" | "weight"
    nodes: tuple[str, ...]
    sqnr_db: float


def _graph_maps(model):
    producer, consumers = {}, defaultdict(list)
    for node in model.graph.node:
        for name in node.output:
            producer[name] = node
        for name in node.input:
            consumers[name].append(node)
    return producer, consumers


def nncf_like_exclusions(model) -> list[str]:
    """Node names to keep fp32 under NNCF's CPU rules: Sigmoid, the Mul it gates (SiLU and the SE
    gate), and the pooling that opens a squeeze-excitation branch ending in a Sigmoid."""
    producer, consumers = _graph_maps(model)
    excluded: list[str] = []
    for node in model.graph.node:
        if node.op_type in ("Sigmoid", "HardSigmoid"):
            excluded.append(node.name)
            excluded.extend(c.name for c in consumers[node.output[0]] if c.op_type == "Mul")
        elif node.op_type in SE_POOLS and _reaches_sigmoid(node, consumers):
            excluded.append(node.name)
    return list(dict.fromkeys(excluded))


def slow_int8_nodes(model) -> dict[str, list[str]]:
    """Node names of the patterns whose ONNX Runtime int8 kernels are slow (edgekit.rewrite.patterns),
    by pattern: grouped convs, float BatchNormalizations, depthwise convs with a channel multiplier
    (left where the rewrite was off). The planner times keeping each group in fp32."""
    from edgekit.rewrite.patterns import DEPTHWISE_MULTIPLIER, FLOAT_BN, GROUPED_CONV, classify, node_facts

    groups: dict[str, list[str]] = {}
    for name, facts in node_facts(model).items():
        pattern = classify(facts, facts["op"])
        if pattern in (GROUPED_CONV, FLOAT_BN, DEPTHWISE_MULTIPLIER) and name:
            groups.setdefault(pattern, []).append(name)
    return groups


def _reaches_sigmoid(node, consumers) -> bool:
    frontier = [node]
    for _ in range(SE_SEARCH_DEPTH):
        frontier = [c for n in frontier for out in n.output for c in consumers[out]]
        if any(c.op_type in ("Sigmoid", "HardSigmoid") for c in frontier):
            return True
    return False


def fallback_units(fp32_path: Path, int8_path: Path, images: np.ndarray) -> list[FallbackUnit]:
    """Every quantized tensor of ``int8_path`` with its error, worst first.

    An activation's error is its own rounding alone: the fp32 model's value of the tensor, put
    through that tensor's QuantizeLinear/DequantizeLinear (scale and zero point read from the int8
    model), against itself. Errors measured inside the int8 model would also carry everything
    earlier layers got wrong (a broken early tensor makes every later one look broken). It is
    measured per channel (``channel_sqnr_db``) so that a few large channels cannot hide the
    others' rounding. A weight's error is ORT's qdq_loss_debug weight SQNR.
    """
    import onnx
    from onnxruntime.quantization.qdq_loss_debug import (
        compute_weight_error,
        create_weight_matching,
    )

    from edgekit.runtimes.sessions import ort_session

    fp32_model = onnx.load(str(fp32_path))
    producer, consumers = _graph_maps(fp32_model)
    quantizers = _activation_quantizers(onnx.load(str(int8_path)))
    graph_input = fp32_model.graph.input[0]
    # A model exported with a fixed batch size must be fed exactly that many images per run.
    static_batch = graph_input.type.tensor_type.shape.dim[0].dim_value
    step = static_batch if static_batch > 0 else 8
    errors: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edgekit-sensitivity-") as tmp:
        augmented = Path(tmp) / "augmented.onnx"
        _save_with_every_output(fp32_path, augmented)
        # Not qdq_loss_debug's augmentation and collect_activations: they flatten every tensor
        # (channels are needed here) and open a new session per call.
        session = ort_session(augmented)
        names = [output.name for output in session.get_outputs()]
        with progress("ranking layers by quantization error", len(images)) as advance:
            for start in range(0, len(images) - step + 1 if static_batch else len(images), step):
                batch = images[start:start + step]
                values = dict(zip(names, session.run(None, {graph_input.name: batch})))
                values[graph_input.name] = batch
                for tensor, (scale, zero_point) in quantizers.items():
                    if tensor in values:
                        exact = values[tensor]
                        rounded = _fake_quantize(exact, scale, zero_point)
                        # Keep the worst batch: a tensor that fails on some images is a sensitive tensor.
                        errors[tensor] = min(errors.get(tensor, math.inf), channel_sqnr_db(exact, rounded))
                advance(len(batch))
    weight_errors = compute_weight_error(create_weight_matching(str(fp32_path), str(int8_path)))
    units = []
    for tensor, sqnr in errors.items():
        nodes = _fusion_group(producer[tensor], producer) if tensor in producer else []
        nodes += [c.name for c in consumers.get(tensor, [])]
        if nodes:
            units.append(FallbackUnit(tensor, "activation", tuple(dict.fromkeys(nodes)), _finite(sqnr)))
    for weight, sqnr in weight_errors.items():
        readers = [c.name for c in consumers.get(weight, [])]
        if readers:
            units.append(FallbackUnit(weight, "weight", tuple(readers), _finite(float(sqnr))))
    return sorted(units, key=lambda unit: unit.sqnr_db)


def _activation_quantizers(int8_model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tensor -> (scale, zero point) of each QuantizeLinear on an activation (not on a weight)."""
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in int8_model.graph.initializer}
    found = {}
    for node in int8_model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants and len(node.input) >= 3:
            if node.input[1] in constants and node.input[2] in constants:
                found[node.input[0]] = (constants[node.input[1]], constants[node.input[2]])
    return found


def _fake_quantize(values: np.ndarray, scale: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """QuantizeLinear then DequantizeLinear, per tensor, as ONNX defines them (round half to even)."""
    info = np.iinfo(zero_point.dtype)
    zero = zero_point.astype(np.float32)
    quantized = np.clip(np.rint(values / scale.astype(np.float32)) + zero, info.min, info.max)
    return (quantized - zero) * scale.astype(np.float32)


def _save_with_every_output(source: Path, destination: Path) -> None:
    """The model with every node output also a graph output (ORT infers their types)."""
    import onnx

    model = onnx.load(str(source))
    present = {output.name for output in model.graph.output}
    for node in model.graph.node:
        for name in node.output:
            if name and name not in present:
                model.graph.output.append(onnx.ValueInfoProto(name=name))
                present.add(name)
    onnx.save(model, str(destination))


def channel_sqnr_db(reference: np.ndarray, quantized: np.ndarray) -> float:
    """SQNR in dB from the mean over channels (axis 1) of each channel's noise-to-signal ratio.

    A tensor-wide SQNR is dominated by its largest channels: one channel of constant 2000 next to
    channels of magnitude 1 scores a high SQNR while those channels round to zero. Averaging the
    per-channel ratio scores it as lost.
    """
    reference = reference.astype(np.float64)
    noise = (reference - quantized.astype(np.float64)) ** 2
    axes = tuple(i for i in range(reference.ndim) if i != 1) if reference.ndim >= 2 else None
    signal = np.sum(reference ** 2, axis=axes)
    noise = np.sum(noise, axis=axes)
    ratio = np.where(signal > 0, noise / np.maximum(signal, 1e-30), np.where(noise > 0, 1.0, 0.0))
    mean_ratio = float(np.mean(ratio))
    return 10.0 * math.log10(1.0 / mean_ratio) if mean_ratio > 0 else math.inf


def _fusion_group(node, producer) -> list[str]:
    """``node`` and, when it is an activation ORT fuses into its input's layer, that layer (and a
    SiLU's Sigmoid): e.g. Relu -> [Relu, Conv]; SiLU's Mul -> [Mul, Conv, Sigmoid]."""
    group, frontier = [node.name], [node]
    for _ in range(FUSION_DEPTH):
        frontier = [producer[name] for n in frontier if n.op_type in FUSED_ACTIVATIONS
                    for name in n.input if name in producer]
        group.extend(n.name for n in frontier)
    return list(dict.fromkeys(group))


def _finite(value: float) -> float:
    # A constant tensor quantizes exactly (infinite SQNR); keep JSON finite and sort it last.
    return value if math.isfinite(value) else 1e6


def nodes_to_fall_back(units: list[FallbackUnit], count: int) -> list[str]:
    """The nodes of the ``count`` worst units (whole groups), in rank order, without repeats."""
    chosen: list[str] = []
    for unit in units[:count]:
        chosen.extend(unit.nodes)
    return list(dict.fromkeys(chosen))
