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

from edgekit.rewrite.patterns import REMEDIES, classify, node_facts

PROFILE_RUNS = 20

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
    import onnx

    return node_facts(onnx.load(str(path), load_external_data=False)) if path.exists() else {}
