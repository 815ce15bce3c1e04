"""Where an int8 model spends its time: ONNX Runtime's own per-node profile of the fp32 and int8 models,
and the int8 model's slowest nodes named by the pattern that makes them slow, with what helps.

The profile is of the graph ONNX Runtime runs (after its fusions: QLinearConv, layout Transposes), so
the nodes are named as the optimized graph names them; that graph is saved beside the profile and each
node is classified from it. Times are per inference, averaged over the profiled runs (batch 1, the
target's threads). A profile slows every node a little: the fp32/int8 ratio is the profile's own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

PROFILE_RUNS = 20

# pattern -> what helps (edgekit.rewrite names its rewrites; the others say what is known to work)
REMEDIES = {
    "depthwise conv with a channel multiplier": "rewrite depthwise-multiplier (edgekit build applies it; "
                                                "this model was built with --no-rewrite or before it existed)",
    "grouped conv": "none automatic: ONNX Runtime loops over groups; a dense block-diagonal conv did not help "
                    "vgg19 col12, so measure per layer",
    "float BatchNormalization": "fold it: a BN per branch before the Concat (GhostNet's form) folds into each conv",
    "Transpose (channel shuffle or layout)": "a shuffle as one channel Gather, or folded into a dense conv's weights",
    "float op between Q/DQ": "its int8 input is dequantized and requantized around it: keep the op's "
                             "neighbours in fp32, or an int8 kernel for it",
}


@dataclass(frozen=True)
class SlowNode:
    name: str
    op: str
    ms: float  # per inference
    share: float  # of the int8 model's node time
    pattern: str | None
    remedy: str | None


@dataclass(frozen=True)
class SpeedReport:
    fp32_model: str
    int8_model: str
    threads: int
    runs: int
    fp32_ms: float  # node time per inference, profiled
    int8_ms: float
    slowest: tuple[SlowNode, ...]
    by_pattern: dict  # pattern -> ms per inference in the int8 model

    @property
    def int8_speedup(self) -> float:
        return self.fp32_ms / self.int8_ms

    def to_dict(self) -> dict:
        return {**asdict(self), "slowest": [asdict(node) for node in self.slowest], "int8_speedup": self.int8_speedup}


def profile_speed(fp32: Path, int8: Path, sample: np.ndarray, *, threads: int, scratch: Path, top: int = 10,
                  fp32_label: str, int8_label: str) -> SpeedReport:
    fp32_nodes, _ = profile_nodes(fp32, sample, threads=threads, scratch=scratch / "fp32")
    int8_nodes, optimized = profile_nodes(int8, sample, threads=threads, scratch=scratch / "int8")
    graph = _graph_nodes(optimized)
    total = sum(ms for _, ms in int8_nodes.values())
    by_pattern: dict[str, float] = defaultdict(float)
    slowest = []
    for name, (op, ms) in sorted(int8_nodes.items(), key=lambda item: -item[1][1]):
        pattern = classify(graph.get(name), op)
        if pattern is not None:
            by_pattern[pattern] += ms
        if len(slowest) < top:
            slowest.append(SlowNode(name, op, ms, ms / total if total else 0.0, pattern, REMEDIES.get(pattern)))
    return SpeedReport(fp32_label, int8_label, threads, PROFILE_RUNS, sum(ms for _, ms in fp32_nodes.values()), total,
                       tuple(slowest), dict(sorted(by_pattern.items(), key=lambda item: -item[1])))


def profile_nodes(path: Path, sample: np.ndarray, *, threads: int, scratch: Path) -> tuple[dict, Path]:
    """{node name: (op, ms per inference)} from ORT's profiler, and the optimized graph it ran."""
    from edgekit.runtimes.sessions import ort_session

    scratch.mkdir(parents=True, exist_ok=True)
    optimized = scratch / "optimized.onnx"
    session = ort_session(path, threads=threads, profile_prefix=str(scratch / "profile"),
                          optimized_model_path=str(optimized))
    feed = {session.get_inputs()[0].name: np.ascontiguousarray(sample[:1])}
    for _ in range(1 + PROFILE_RUNS):  # the first run does lazy set-up (weight packing): dropped below
        session.run(None, feed)
    return _node_times(Path(session.end_profiling()), runs=PROFILE_RUNS), optimized


def _node_times(profile: Path, *, runs: int) -> dict[str, tuple[str, float]]:
    """Per node: its op and mean ms over its last ``runs`` kernel events (events are in time order)."""
    events: dict[str, list] = {}
    for event in json.loads(profile.read_text()):
        if event.get("cat") != "Node" or not str(event.get("name", "")).endswith("_kernel_time"):
            continue
        name = event["name"][: -len("_kernel_time")]
        events.setdefault(name, [event.get("args", {}).get("op_name", "?"), []])[1].append(float(event.get("dur", 0)))
    return {name: (op, sum(durations[-runs:]) / runs / 1000.0) for name, (op, durations) in events.items()}


def _graph_nodes(path: Path) -> dict[str, dict]:
    """Each node of the optimized graph: op, attributes that matter, and its weight's shape."""
    import onnx

    if not path.exists():
        return {}
    model = onnx.load(str(path), load_external_data=False)
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    nodes = {}
    for node in model.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        weight_index = 3 if node.op_type == "QLinearConv" else 1
        weight = shapes.get(node.input[weight_index]) if len(node.input) > weight_index else None
        inputs_from = [i for i in node.input]
        nodes[node.name] = {"op": node.op_type, "group": group, "weight": weight, "inputs": inputs_from}
    return nodes


def classify(node: dict | None, op: str) -> str | None:
    """The slow-int8 pattern a profiled node belongs to, or None."""
    op = node["op"] if node else op
    if op in ("Conv", "QLinearConv", "FusedConv", "NhwcFusedConv") and node and node["group"] > 1 and node["weight"]:
        out_channels, per_group = node["weight"][0], node["weight"][1]
        if per_group == 1 and out_channels != node["group"]:
            return "depthwise conv with a channel multiplier"
        if per_group > 1:
            return "grouped conv"
        return None
    if op == "BatchNormalization":
        return "float BatchNormalization"
    if op == "Transpose":
        return "Transpose (channel shuffle or layout)"
    if op in ("QuantizeLinear", "DequantizeLinear"):
        return "float op between Q/DQ"
    return None
