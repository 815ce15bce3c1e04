"""The rewrite stage: every registered rewrite in turn, each kept only where fp32 parity holds.

A rewrite is tried on a copy of the graph. It is kept when ONNX Runtime runs the copy and its logits
stay within PARITY_TOLERANCE (max |diff| / max |logit|) of the graph before any rewrite, on the
build's parity inputs; otherwise the graph stays as it was and the record says why. A rewrite never
fails a build: an exception inside onnxscript is a skipped rewrite with its reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.artifact.records import GraphRewriteRecord, RewriteRecord
from edgekit.core.progress import say
from edgekit.rewrite.registry import GraphRewrite, list_rewrites
from edgekit.runtimes.compare import compare_logits
from edgekit.runtimes.sessions import ort_logits

PARITY_TOLERANCE = 1e-5
TIMING_ROUNDS = 3  # before/after timed interleaved, median: one noisy round cannot make a gain
MAX_NEAR_MISSES = 20  # listed in the manifest; the count says how many more there were


def rewrite_onnx(source: Path, destination: Path, check_inputs: np.ndarray, *, scratch: Path,
                 time_fp32: Callable[[Path], float] | None = None, timing: str = "not timed") -> RewriteRecord:
    """Write ``source`` with every rewrite that applies and keeps parity to ``destination``.

    ``time_fp32(path)`` gives a model's fp32 p50 in ms; with it each kept rewrite records its gain,
    and ``timing`` says where that was measured (without it, why not).
    """
    import onnxscript
    from onnxscript import ir

    model = ir.load(str(source))
    nodes_before = _count_nodes(model)
    reference = ort_logits(source, check_inputs)
    current, records = source, []
    for index, rewrite in enumerate(list_rewrites(), 1):
        record, candidate = _try(rewrite, model, reference, check_inputs, scratch / f"rewrite{index}.onnx")
        if candidate is not None:
            if time_fp32 is not None:
                before, after = _timed_pair(time_fp32, current, scratch / f"rewrite{index}.onnx")
                record = replace(record, fp32_ms_before=before, fp32_ms_after=after)
            model, current = candidate, scratch / f"rewrite{index}.onnx"
        records.append(record)
        _say(record)
    shutil.copyfile(current, destination)
    return RewriteRecord(tool="onnxscript.rewriter", version=onnxscript.__version__, parity_tolerance=PARITY_TOLERANCE,
                         timing=timing, nodes_before=nodes_before, nodes_after=_count_nodes(model),
                         rewrites=tuple(records))


def _try(rewrite: GraphRewrite, model, reference: np.ndarray, check_inputs: np.ndarray, path: Path):
    """(record, the rewritten model or None where it is not kept)."""
    from onnxscript import ir
    from onnxscript.ir.passes.common import RemoveUnusedNodesPass
    from onnxscript.rewriter import RewriteRuleSet

    candidate = ir.from_proto(ir.to_proto(model))  # a copy: a rejected rewrite leaves the graph as it was
    rule = rewrite.make()
    base = {"name": rewrite.name, "pattern": rewrite.pattern}
    try:
        matches = RewriteRuleSet([rule.make_rule()]).apply_to_model(candidate)
    except Exception as error:  # onnxscript's own failure on an odd graph: skip, never fail the build
        return GraphRewriteRecord(**base, matches=0, applied=False, reason=f"the rewrite failed: {_line(error)}"), None
    near = _near_misses(rule.near_misses)
    if not matches:
        return GraphRewriteRecord(**base, matches=0, applied=False, reason="no match", near_misses=near), None
    RemoveUnusedNodesPass()(candidate)
    ir.save(candidate, str(path))
    try:
        measured = compare_logits(reference, ort_logits(path, check_inputs))
    except Exception as error:
        return GraphRewriteRecord(**base, matches=matches, applied=False, near_misses=near,
                                  reason=f"ONNX Runtime cannot run the rewritten graph: {_line(error)}"), None
    diff = float(measured["max_normalised_diff"])
    if not diff <= PARITY_TOLERANCE:  # NaN fails too
        return GraphRewriteRecord(**base, matches=matches, applied=False, near_misses=near,
                                  parity_max_normalised_diff=diff,
                                  reason=f"fp32 parity {diff:.1e} exceeds {PARITY_TOLERANCE:g}"), None
    return GraphRewriteRecord(**base, matches=matches, applied=True, near_misses=near,
                              parity_max_normalised_diff=diff), candidate


def _timed_pair(time_fp32: Callable[[Path], float], before: Path, after: Path) -> tuple[float, float]:
    rounds = [(time_fp32(before), time_fp32(after)) for _ in range(TIMING_ROUNDS)]
    return float(np.median([r[0] for r in rounds])), float(np.median([r[1] for r in rounds]))


def _near_misses(found: list[str]) -> tuple[str, ...]:
    if len(found) <= MAX_NEAR_MISSES:
        return tuple(found)
    return (*found[:MAX_NEAR_MISSES], f"... and {len(found) - MAX_NEAR_MISSES} more")


def _count_nodes(model) -> int:
    return sum(1 for _ in model.graph)


def _line(error: Exception) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def _say(record: GraphRewriteRecord) -> None:
    if record.applied:
        gain = (f", fp32 {record.fp32_ms_before:.3f} -> {record.fp32_ms_after:.3f} ms"
                if record.fp32_ms_before is not None else "")
        say(f"rewrite {record.name}: {record.matches} matches, parity {record.parity_max_normalised_diff:.1e}{gain}")
    elif record.matches or record.near_misses or record.reason != "no match":
        left = f"; {len(record.near_misses)} near misses left as they are" if record.near_misses else ""
        say(f"rewrite {record.name} not applied: {record.reason}{left}")
