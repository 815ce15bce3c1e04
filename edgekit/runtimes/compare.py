"""Comparing two runtimes' logits on the same inputs: differences scaled by the reference's largest
|logit|, top-1 agreement. Used by the export parity check, the build's int8 check, the planner and diff."""

from __future__ import annotations

import numpy as np

from edgekit.core.errors import EdgekitError


def require_finite(logits: np.ndarray, what: str) -> None:
    """NaN/inf outputs mean broken weights or preprocessing: no tolerance would make them agree."""
    if not np.isfinite(logits).all():
        raise EdgekitError(f"{what} gives NaN or infinite outputs on the check inputs: the weights or the "
                           "preprocessing (--mean/--std) are broken")


def compare_logits(reference: np.ndarray, candidate: np.ndarray, *, reference_name: str = "the reference model",
                   candidate_name: str = "the converted model") -> dict:
    """Differences normalised by the reference's largest |logit|, so the tolerance is scale-free."""
    require_finite(reference, reference_name)
    require_finite(candidate, candidate_name)
    diff = np.abs(reference.astype(np.float64) - candidate.astype(np.float64))
    scale = max(float(np.abs(reference).max()), 1e-12)
    return {
        "max_abs_diff": float(diff.max()),
        "max_normalised_diff": float(diff.max() / scale),
        "mean_abs_diff": float(diff.mean()),
        "top1_agreement": float((reference.argmax(1) == candidate.argmax(1)).mean()),
        "samples": int(len(reference)),
    }
