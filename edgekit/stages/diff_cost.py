"""What each Q/DQ pair costs at the output: the int8 model's quantization one pair at a time.

A tensor's SQNR says how wrong that tensor is, not how much the error matters at the logits, and a
MinMax-calibrated model can lose its accuracy a little at a time over many tensors (measured on
kEffNet-B0: keeping the 8 layers with the most SQNR added in fp32 recovered none of its 2.7 points;
see benchmarks/diff_check.py). So each of the int8 model's Q/DQ pairs (an activation's
QuantizeLinear + DequantizeLinear, or a weight's DequantizeLinear), with its own scale and zero
point, is put into the fp32 model alone, and the logits on the same images are compared with
fp32's. Ranked by that noise, worst first; each pair's share of the summed noise says whether a few
tensors carry the loss (keeping those in fp32 recovers it) or whether it is spread over many (the
calibration method is the lever, not fp32 fallback).

The fp32 model is saved once with its weights as external data, so each one-pair model is a small
graph proto plus that pair's constants, not a copy of every weight.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from edgekit.stages.diff_report import OutputCost, OutputCostReport

_SUFFIX = "__edgekit_pair"
_EPS = float(np.finfo(float).eps) ** 2


def _pairs(int8_graph) -> list[dict]:
    """The int8 model's Q/DQ pairs: per activation its QuantizeLinear (input tensor, scale, zero
    point, axis); per weight or bias its DequantizeLinear of an initializer."""
    from onnxruntime.quantization.quant_utils import TENSOR_NAME_QUANT_SUFFIX

    from edgekit.stages.diff_layers import _original_name

    constants = {init.name for init in int8_graph.initializer}
    pairs, seen = [], set()
    for node in int8_graph.node:
        # A quantized graph output is renamed "<name>_QuantizeLinear_Input" before its pair.
        tensor = _original_name(node.input[0])
        if node.op_type == "QuantizeLinear" and node.input[0] not in constants and tensor not in seen:
            seen.add(tensor)
            pairs.append({"kind": "activation", "tensor": tensor, "node": node})
        elif node.op_type == "DequantizeLinear" and node.input[0] in constants:
            name = node.input[0].removesuffix(TENSOR_NAME_QUANT_SUFFIX)
            if name not in seen:
                seen.add(name)
                pairs.append({"kind": "weight", "tensor": name, "node": node})
    return pairs


def _one_pair_graph(base, pair: dict, int8_constants: dict, fp32_initializers: set[str],
                    fp32_producer: dict) -> object | None:
    """``base`` (the fp32 graph, weights external) with ``pair`` put in; None when the fp32 graph
    has no tensor of that name (the int8 graph was rewritten there)."""
    import onnx
    from onnx import helper

    graph = onnx.GraphProto()
    graph.CopyFrom(base)
    node, tensor = pair["node"], pair["tensor"]
    attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    renamed = [f"{name}{_SUFFIX}" for name in node.input]
    for name, new in zip(node.input, renamed, strict=True):
        if name in int8_constants:
            constant = graph.initializer.add()
            constant.CopyFrom(int8_constants[name])
            constant.name = new
    if pair["kind"] == "weight":
        if tensor not in fp32_initializers:
            return None
        kept = [init for init in graph.initializer if init.name != tensor]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        kept_inputs = [value for value in graph.input if value.name != tensor]  # pre-IR-4 models list weights
        del graph.input[:]
        graph.input.extend(kept_inputs)
        graph.node.insert(0, helper.make_node("DequantizeLinear", renamed, [tensor], name=f"{tensor}{_SUFFIX}_dq",
                                              **attributes))
        return graph
    quantized = f"{tensor}{_SUFFIX}_q"
    q_inputs = [tensor, *renamed[1:]]
    if tensor in fp32_producer:  # rename the producer's output, so every consumer and output sees int8
        index, producer = fp32_producer[tensor]
        raw = f"{tensor}{_SUFFIX}_fp32"
        target = graph.node[index]
        target.output[list(producer.output).index(tensor)] = raw
        q_inputs[0] = raw
        position, dequantized = index + 1, tensor
    elif tensor in {value.name for value in graph.input}:  # the graph input: rewire its consumers
        position, dequantized = 0, f"{tensor}{_SUFFIX}_dq"
        for consumer in graph.node:
            for i, name in enumerate(consumer.input):
                if name == tensor:
                    consumer.input[i] = dequantized
    else:
        return None
    q_attributes = {k: v for k, v in attributes.items() if k in ("axis", "saturate", "block_size")}
    graph.node.insert(position, helper.make_node("DequantizeLinear", [quantized, *renamed[1:]], [dequantized],
                                                 name=f"{tensor}{_SUFFIX}_dq_node", **q_attributes))
    graph.node.insert(position, helper.make_node("QuantizeLinear", q_inputs, [quantized],
                                                 name=f"{tensor}{_SUFFIX}_q_node", **attributes))
    return graph


def _logits(path: Path, images: np.ndarray, threads: int) -> np.ndarray:
    from edgekit.runtimes import ort_logits

    # Basic optimisations only: the pair is not fused into an int8 kernel, so its rounding is what is measured.
    return ort_logits(path, images, batch_size=16, threads=threads, basic_optimizations_only=True)


def _noise(reference: np.ndarray, other: np.ndarray) -> float:
    diff = (reference.astype(np.float64) - other.astype(np.float64)).ravel()
    return float(diff @ diff)


def output_costs(fp32_path: Path, int8_path: Path, images: np.ndarray, *, scratch: Path, threads: int = 0,
                 advance: Callable[[int], None] | None = None) -> OutputCostReport:
    """Every Q/DQ pair of ``int8_path`` alone in ``fp32_path``: logit noise against fp32 on ``images``."""
    import onnx

    fp32 = onnx.load(str(fp32_path))
    external = scratch / "fp32_external.onnx"
    onnx.save_model(fp32, str(external), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="fp32_weights.bin", size_threshold=256)
    base = onnx.load(str(external), load_external_data=False)
    fp32_initializers = {init.name for init in base.graph.initializer}
    fp32_producer = {out: (i, node) for i, node in enumerate(base.graph.node) for out in node.output}
    consumers: dict[str, list[str]] = {}
    for node in base.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node.op_type)
    int8_graph = onnx.load(str(int8_path)).graph
    int8_constants = {init.name: init for init in int8_graph.initializer}

    reference = _logits(fp32_path, images, threads)
    signal = float((reference.astype(np.float64) ** 2).sum())
    top1 = reference.argmax(1)
    whole = _logits(int8_path, images, threads)
    whole_noise = _noise(reference, whole)

    measured, skipped = [], []
    for pair in _pairs(int8_graph):
        graph = _one_pair_graph(base.graph, pair, int8_constants, fp32_initializers, fp32_producer)
        if graph is None:
            skipped.append(pair["tensor"])
        else:
            model = onnx.ModelProto()
            model.CopyFrom(base)
            model.graph.CopyFrom(graph)
            path = scratch / "one_pair.onnx"  # beside fp32_weights.bin, which it refers to
            onnx.save_model(model, str(path))
            logits = _logits(path, images, threads)
            measured.append((pair, _noise(reference, logits), float((logits.argmax(1) == top1).mean())))
        if advance is not None:
            advance(1)
    total = sum(noise for _, noise, _ in measured)
    order = sorted(measured, key=lambda item: -item[1])
    costs = tuple(OutputCost(
        rank=rank, tensor=pair["tensor"], kind=pair["kind"],
        consumers=tuple(consumers.get(pair["tensor"], ())),
        output_sqnr_db=10 * np.log10(max(signal, _EPS) / max(noise, _EPS)),
        noise_share=noise / total if total > 0 else 0.0, agreement=agreement)
        for rank, (pair, noise, agreement) in enumerate(order, 1))
    return OutputCostReport(
        images=len(images), pairs=len(measured), skipped=tuple(skipped),
        int8_output_sqnr_db=10 * float(np.log10(max(signal, _EPS) / max(whole_noise, _EPS))),
        int8_agreement=float((whole.argmax(1) == top1).mean()),
        summed_to_whole=total / whole_noise if whole_noise > 0 else None, costs=costs)


def pair_count(int8_path: Path) -> int:
    import onnx

    return len(_pairs(onnx.load(str(int8_path), load_external_data=False).graph))
