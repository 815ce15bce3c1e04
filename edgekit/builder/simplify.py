"""ONNX graph simplification with onnxsim (constant folding, BN/shape clean-up)."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgekit.artifact.records import SimplifyRecord
from edgekit.core.progress import warn


def simplify_onnx(source: Path, destination: Path) -> SimplifyRecord:
    """Write a simplified copy of ``source``; on failure copy it unchanged and record why."""
    import onnx
    import onnxsim

    model = onnx.load(str(source))
    before = len(model.graph.node)
    try:
        simplified, check_ok = onnxsim.simplify(model)
    except Exception as error:  # onnxsim surfaces C++ errors of many kinds
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        warn(f"onnxsim failed, keeping the unsimplified model: {reason}")
        shutil.copyfile(source, destination)
        return SimplifyRecord(tool="onnxsim", version=onnxsim.__version__, applied=False, reason=reason,
                              nodes_before=before, nodes_after=before)
    if not check_ok:
        warn("onnxsim's own output check failed, keeping the unsimplified model")
        shutil.copyfile(source, destination)
        return SimplifyRecord(tool="onnxsim", version=onnxsim.__version__, applied=False,
                              reason="onnxsim check failed", nodes_before=before, nodes_after=before)
    onnx.save(simplified, str(destination))
    return SimplifyRecord(tool="onnxsim", version=onnxsim.__version__, applied=True,
                          nodes_before=before, nodes_after=len(simplified.graph.node))
