"""Pruning: the paper's iterative global L1 unstructured pruning and structured channel pruning.

``unstructured`` zeroes weights (same architecture, sparse weights); ``structured`` removes whole
channels with torch-pruning (a smaller architecture, recorded by ``pruned_shapes``, which lives
with the models: rebuilding a pruned model is the registry's job).
"""

from edgekit.models.pruned_shapes import apply_pruned_shapes, pruned_shapes
from edgekit.prune.structured import StructuredResult, prune_channels
from edgekit.prune.unstructured import (
    make_permanent,
    prunable_conv_weights,
    prune_round,
    rounds_for_sparsity,
    sparsity,
)

__all__ = [
    "StructuredResult", "apply_pruned_shapes", "make_permanent", "prunable_conv_weights", "prune_channels",
    "prune_round", "pruned_shapes", "rounds_for_sparsity", "sparsity",
]
