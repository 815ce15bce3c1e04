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

from edgekit.diff.report import OutputCost, OutputCostReport

_SUFFIX = "__edgekit_pair"
_EPS = float(np.finfo(float).eps) ** 2


def qdq_pairs(int8_graph) -> list[dict]:
    """The int8 model's Q/DQ pairs: per activation its QuantizeLinear (input tensor, scale, zero
    point, axis); per weight or bias its DequantizeLinear of an initializer."""
    from onnxruntime.quantization.quant_utils import TENSOR_NAME_QUANT_SUFFIX

    from edgekit.diff.layers import _original_name

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


def unfused_logits(path: Path, images: np.ndarray, threads: int) -> np.ndarray:
    from edgekit.runtimes.sessions import ort_logits

    # Basic optimisations only: the pair is not fused into an int8 kernel, so its rounding is what is measured.
    return ort_logits(path, images, batch_size=16, threads=threads, basic_optimizations_only=True)


def output_noise(reference: np.ndarray, other: np.ndarray) -> float:
    diff = (reference.astype(np.float64) - other.astype(np.float64)).ravel()
    return float(diff @ diff)


class PairModels:
    """The fp32 model, saved once with its weights external, run with int8 Q/DQ pairs put in."""

    def __init__(self, fp32_path: Path, int8_graph, *, scratch: Path, threads: int):
        import onnx

        external = scratch / "fp32_external.onnx"
        onnx.save_model(onnx.load(str(fp32_path)), str(external), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="fp32_weights.bin", size_threshold=256)
        self.fp32_path, self.scratch, self.threads = fp32_path, scratch, threads
        self.base = onnx.load(str(external), load_external_data=False)
        self.fp32_initializers = {init.name for init in self.base.graph.initializer}
        self.fp32_producer = {out: (i, node) for i, node in enumerate(self.base.graph.node) for out in node.output}
        self.int8_constants = {init.name: init for init in int8_graph.initializer}

    def consumers(self) -> dict[str, list[str]]:
        """Op types reading each tensor of the fp32 graph."""
        readers: dict[str, list[str]] = {}
        for node in self.base.graph.node:
            for name in node.input:
                readers.setdefault(name, []).append(node.op_type)
        return readers

    def save(self, graph, name: str) -> Path:
        """``graph`` as a model beside fp32_weights.bin, which it refers to."""
        import onnx

        model = onnx.ModelProto()
        model.CopyFrom(self.base)
        model.graph.CopyFrom(graph)
        path = self.scratch / name
        onnx.save_model(model, str(path))
        return path

    def logits_with(self, pair: dict, images: np.ndarray, constants: dict | None = None) -> np.ndarray | None:
        """fp32 logits with ``pair`` quantized (``constants`` replacing some of the int8 model's
        scale and zero-point initializers); None when the fp32 graph lacks the pair's tensor."""
        graph = _one_pair_graph(self.base.graph, pair, {**self.int8_constants, **(constants or {})},
                                self.fp32_initializers, self.fp32_producer)
        return None if graph is None else unfused_logits(self.save(graph, "one_pair.onnx"), images, self.threads)


def output_costs(models: PairModels, int8_path: Path, images: np.ndarray, *,
                 advance: Callable[[int], None] | None = None) -> OutputCostReport:
    """Every Q/DQ pair of ``int8_path`` alone in ``models``' fp32 model: logit noise against fp32 on ``images``."""
    import onnx

    fp32_path, threads = models.fp32_path, models.threads
    int8_graph = onnx.load(str(int8_path)).graph
    consumers = models.consumers()
    reference = unfused_logits(fp32_path, images, threads)
    signal = float((reference.astype(np.float64) ** 2).sum())
    top1 = reference.argmax(1)
    whole = unfused_logits(int8_path, images, threads)
    whole_noise = output_noise(reference, whole)

    measured, skipped = [], []
    for pair in qdq_pairs(int8_graph):
        logits = models.logits_with(pair, images)
        if logits is None:
            skipped.append(pair["tensor"])
        else:
            measured.append((pair, output_noise(reference, logits), float((logits.argmax(1) == top1).mean())))
        if advance is not None:
            advance(1)
    total = sum(noise for _, noise, _ in measured)
    order = sorted(measured, key=lambda item: -item[1])
    costs = tuple(OutputCost(
        rank=rank, tensor=pair["tensor"], kind=pair["kind"],
        consumers=tuple(consumers.get(pair["tensor"], ())),
        output_sqnr_db=sqnr_db(signal, noise),
        noise_share=noise / total if total > 0 else 0.0, agreement=agreement)
        for rank, (pair, noise, agreement) in enumerate(order, 1))
    return OutputCostReport(
        images=len(images), pairs=len(measured), skipped=tuple(skipped),
        int8_output_sqnr_db=sqnr_db(signal, whole_noise),
        int8_agreement=float((whole.argmax(1) == top1).mean()),
        summed_to_whole=total / whole_noise if whole_noise > 0 else None, costs=costs)


def sqnr_db(signal: float, noise: float) -> float:
    return 10 * float(np.log10(max(signal, _EPS) / max(noise, _EPS)))


def pair_count(int8_path: Path) -> int:
    import onnx

    return len(qdq_pairs(onnx.load(str(int8_path), load_external_data=False).graph))
