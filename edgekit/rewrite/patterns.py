"""The graph patterns whose int8 kernels are slow in ONNX Runtime, told apart node by node.

Shared by `edgekit diff` (which names the slowest nodes of an int8 model by pattern) and the int8
planner (which times candidates that keep a pattern's nodes in fp32). A node is described by its op,
its ``group`` and its weight's shape, read from an ONNX graph (the fp32 model, or the graph ORT
runs after its fusions, where a conv may be a QLinearConv).
"""

from __future__ import annotations

DEPTHWISE_MULTIPLIER = "depthwise conv with a channel multiplier"
GROUPED_CONV = "grouped conv"
FLOAT_BN = "float BatchNormalization"
TRANSPOSE = "Transpose (channel shuffle or layout)"
QDQ_AROUND_FLOAT = "float op between Q/DQ"

# pattern -> what helps (edgekit.rewrite's rewrites by name; the others say what is known to work)
REMEDIES = {
    DEPTHWISE_MULTIPLIER: "rewrite depthwise-multiplier (edgekit build applies it; this model was built with "
                          "--no-rewrite or before it existed)",
    GROUPED_CONV: "none automatic: ONNX Runtime loops over groups (a dense block-diagonal conv did not help "
                  "vgg19 col12); the planner's latency-aware plan keeps them in fp32 where that is faster",
    FLOAT_BN: "fold it: a BN per branch before the Concat (GhostNet's form) folds into each conv; the "
              "planner's latency-aware plan keeps them out of int8",
    TRANSPOSE: "a shuffle as one channel Gather, or folded into a dense conv's weights",
    QDQ_AROUND_FLOAT: "its int8 input is dequantized and requantized around a float op: keep its neighbours "
                      "in fp32, or find an int8 kernel for it",
}
CONVS = ("Conv", "QLinearConv", "FusedConv", "NhwcFusedConv")


def node_facts(model) -> dict[str, dict]:
    """Per node name of an ONNX ModelProto: its op, ``group`` and weight shape (None where not constant)."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    facts = {}
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight_index = 3 if node.op_type == "QLinearConv" else 1
        weight = shapes.get(node.input[weight_index]) if len(node.input) > weight_index else None
        facts[node.name] = {"op": node.op_type, "group": group, "weight": weight}
    return facts


def classify(facts: dict | None, op: str) -> str | None:
    """The slow-int8 pattern of a node (``facts`` from node_facts, or None with only its ``op``), or None."""
    op = facts["op"] if facts else op
    if op in CONVS:
        if not facts or facts["group"] <= 1 or not facts["weight"]:
            return None
        out_channels, per_group = facts["weight"][0], facts["weight"][1]
        if per_group == 1:
            return DEPTHWISE_MULTIPLIER if out_channels != facts["group"] else None
        return GROUPED_CONV
    return {"BatchNormalization": FLOAT_BN, "Transpose": TRANSPOSE, "QuantizeLinear": QDQ_AROUND_FLOAT,
            "DequantizeLinear": QDQ_AROUND_FLOAT}.get(op)
