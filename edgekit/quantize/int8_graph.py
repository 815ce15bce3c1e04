"""An int8 QDQ graph that loads under each of ONNX Runtime's x86 int8 kernel paths.

With ``session.x64quantprecision=1`` (the exact kernels that x86 CPUs without VNNI need) ORT rewrites
every int8 weight that does not fit 7 bits into a u8 copy named ``<weight>_s8_2_u8``, once per
DequantizeLinear. It first gives each consumer of a DequantizeLinear its own copy of that node, so a
quantized weight that reaches two nodes is rewritten twice, and the second copy's name collides:
"AddInitializedOrtValue Attempt to replace the existing tensor" and the model does not load
(ONNX Runtime 1.31.1; benchmarks/ort_x64quantprecision_repro.py). The papers' ghost and grouped
networks hit it: their BatchNormalizations after a Concat keep equal scale tensors, which the
exporter shares and ORT's quantizer quantizes as one int8 weight.

``separate_shared_weights`` gives every consumer its own DequantizeLinear and its own int8 weight
and zero point: the same arithmetic, a few duplicated tensors. ``exact_option_collisions`` finds
what would still collide, from the graph alone, so the check does not depend on this CPU.
"""

from __future__ import annotations

from collections import defaultdict

# ORT leaves int8 weights within this range alone (Int8TensorProto2Uint8 in its s8_to_u8.h).
UNCHANGED_BY_REWRITE = (-64, 64)


def _int8_weight_dequantizers(graph, initializers: dict) -> list:
    """DequantizeLinear nodes whose data is an int8 initializer: the weights ORT may rewrite."""
    from onnx import TensorProto

    return [node for node in graph.node if node.op_type == "DequantizeLinear" and node.input
            and node.input[0] in initializers and initializers[node.input[0]].data_type == TensorProto.INT8]


def _consumers(graph) -> dict[str, list]:
    found = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            if name:
                found[name].append(node)
    return found


def _rewritten(tensor) -> bool:
    from onnx import numpy_helper

    values = numpy_helper.to_array(tensor)
    low, high = UNCHANGED_BY_REWRITE
    return bool(values.size) and bool((values < low).any() or (values > high).any())


def exact_option_collisions(model) -> list[str]:
    """Names of the int8 tensors that ORT's exact-kernel rewrite would add twice: each is reached by
    more than one (DequantizeLinear, consumer) pair whose weight it rewrites. Empty: the model loads
    with ``session.x64quantprecision=1`` as far as this rewrite goes."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    consumers = _consumers(graph)
    reached: dict[str, int] = defaultdict(int)
    for node in _int8_weight_dequantizers(graph, initializers):
        if not _rewritten(initializers[node.input[0]]):
            continue
        copies = max(1, len(consumers[node.output[0]]))  # ORT makes one DequantizeLinear per consumer
        for name in (node.input[0], node.input[2] if len(node.input) > 2 else ""):
            if name:
                reached[name] += copies
    return sorted(name for name, count in reached.items() if count > 1)


def separate_shared_weights(model) -> int:
    """Give each consumer of an int8 weight its own DequantizeLinear, weight and zero point (in place).
    Returns how many DequantizeLinear nodes were added (a node whose tensors another one already
    owns gets copies of them, and adds none)."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    consumers = _consumers(graph)
    taken = {name for node in graph.node for name in (*node.input, *node.output, node.name)} | set(initializers)
    claimed: set[str] = set()  # int8 tensors already owned by one (DequantizeLinear, consumer) pair
    added: dict[int, list] = defaultdict(list)  # index of the original DequantizeLinear -> its copies

    def fresh(name: str) -> str:
        index = 1
        while f"{name}_{index}" in taken:
            index += 1
        taken.add(f"{name}_{index}")
        return f"{name}_{index}"

    def copy_tensor(name: str) -> str:
        tensor = initializers[name].__class__()
        tensor.CopyFrom(initializers[name])
        tensor.name = fresh(name)
        graph.initializer.append(tensor)
        return tensor.name

    order = {id(node): index for index, node in enumerate(graph.node)}
    for node in _int8_weight_dequantizers(graph, initializers):
        slots = [slot for slot in (0, 2) if slot < len(node.input) and node.input[slot] in initializers]
        # This node keeps its tensors unless another pair already owns them; then it gets copies.
        for slot in slots:
            if node.input[slot] in claimed:
                node.input[slot] = copy_tensor(node.input[slot])
            claimed.add(node.input[slot])
        for user in consumers[node.output[0]][1:]:
            copy = node.__class__()
            copy.CopyFrom(node)
            copy.name = fresh(node.name or "DequantizeLinear")
            copy.output[0] = fresh(node.output[0])
            for slot in slots:
                copy.input[slot] = copy_tensor(node.input[slot])
                claimed.add(copy.input[slot])
            for position, name in enumerate(user.input):
                if name == node.output[0]:
                    user.input[position] = copy.output[0]
            added[order[id(node)]].append(copy)
    if added:
        nodes = list(graph.node)
        del graph.node[:]
        for index, node in enumerate(nodes):  # each copy right after its original: still topological
            graph.node.append(node)
            graph.node.extend(added.get(index, ()))
    return sum(len(copies) for copies in added.values())


def int8_weight_bits(model) -> int:
    """7 where every int8 weight fits [-64, 64] (exact with ORT's fast u8 x s8 kernels on any x86
    CPU: pair sums of u8 x s7 stay below 2^15), else 8."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    weights = [initializers[node.input[0]] for node in _int8_weight_dequantizers(graph, initializers)]
    return 8 if any(_rewritten(tensor) for tensor in weights) else 7



def exact_rewrite_active_here() -> bool:
    """Whether this host's ONNX Runtime applies the exact-kernel weight rewrite at all: it does where
    its u8 x u8 and u8 x s8 kernels differ (AVX2, AVX-512 and VNNI CPUs seen so far), so loading with
    the option here proves the load on a CPU that needs it; elsewhere only the graph check does."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS

    weight = numpy_helper.from_array(np.full((1, 1, 1, 1), 127, np.int8), "w_q")
    nodes = [helper.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w"]),
             helper.make_node("Conv", ["x", "w"], ["y"])]
    graph = helper.make_graph(nodes, "probe", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])],
                              [weight, numpy_helper.from_array(np.asarray(0.01, np.float32), "s"),
                               numpy_helper.from_array(np.asarray(0, np.int8), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with tempfile.TemporaryDirectory(prefix="edgekit-probe-") as tmp:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        for key, value in EXACT_INT8_OPTIONS.items():
            options.add_session_config_entry(key, value)
        ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        optimized = onnx.load(options.optimized_model_filepath)
    return any(t.name.endswith("_s8_2_u8") for t in optimized.graph.initializer)
