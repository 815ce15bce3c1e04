"""Iterative global L1 unstructured pruning, as in Sobolewski & Szyc.

Each round zeroes ``amount`` (the paper: 20%) of the conv weights that are still non-zero,
ranked by magnitude across all conv layers together (global L1), and the network is fine-tuned
before the next round. Rounds compound: after N rounds of 20%, ``1 - 0.8**N`` of the conv weights
are zero (36% after 2, 48.8% after 3, 59% after 4).

The masks are torch.nn.utils.prune's reparametrisation (``weight = weight_orig * weight_mask``),
so fine-tuning between rounds cannot revive a pruned weight. Keep them attached across rounds (a
round computes its fraction over the weights its masks still let through) and call
:func:`make_permanent` at the end, which restores the plain ``weight`` state_dict keys. While
masks are attached, ``copy.deepcopy(model)`` fails (the masked weight is a computed tensor):
snapshot the best epoch with ``state_dict()``, which holds ``weight_orig`` and ``weight_mask``.
Zeros alone do not make a dense conv faster; they make the weights compress well.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import prune

from edgekit.core.errors import EdgekitError

# A target sparsity that 1 - (1 - amount)**N reaches up to float rounding still counts as reached.
_SPARSITY_SLACK = 1e-9


def prunable_conv_weights(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """Every ``nn.Conv2d`` weight of ``model`` (depthwise and grouped ones included)."""
    return [(module, "weight") for module in model.modules() if isinstance(module, nn.Conv2d)]


def prune_round(model: nn.Module, *, amount: float) -> None:
    """Zero ``amount`` (0 < amount < 1) of the still-unpruned conv weights, smallest |w| first, globally."""
    if not 0 < amount < 1:
        raise EdgekitError(f"pruning amount must be a fraction in (0, 1), got {amount}")
    parameters = prunable_conv_weights(model)
    if not parameters:
        raise EdgekitError(f"{type(model).__name__} has no Conv2d layers to prune")
    prune.global_unstructured(parameters, pruning_method=prune.L1Unstructured, amount=amount)


def make_permanent(model: nn.Module) -> None:
    """Fold every pruning mask into its weight and drop the reparametrisation (no-op if none)."""
    for module in model.modules():
        for name in _masked_names(module):
            prune.remove(module, name)


def sparsity(model: nn.Module) -> dict:
    """Zero fractions of the weights the model computes with, masks attached or made permanent.

    ``conv_sparsity`` is over ``nn.Conv2d`` weights (what :func:`prune_round` prunes);
    ``parameter_sparsity`` over every parameter (BN, biases and linear layers stay dense).
    """
    conv_weights = zero_conv_weights = 0
    for module, name in prunable_conv_weights(model):
        weight = getattr(module, name)
        conv_weights += weight.numel()
        zero_conv_weights += int((weight == 0).sum())
    parameters = zero_parameters = 0
    for module in model.modules():
        masked = _masked_names(module)
        for name, parameter in module.named_parameters(recurse=False):
            # With a mask attached the parameter is weight_orig; the network computes with weight.
            is_masked = name.endswith("_orig") and name.removesuffix("_orig") in masked
            effective = getattr(module, name.removesuffix("_orig")) if is_masked else parameter
            parameters += effective.numel()
            zero_parameters += int((effective == 0).sum())
    return {
        "conv_sparsity": zero_conv_weights / conv_weights if conv_weights else 0.0,
        "parameter_sparsity": zero_parameters / parameters if parameters else 0.0,
        "conv_weights": conv_weights,
        "zero_conv_weights": zero_conv_weights,
    }


def rounds_for_sparsity(target: float, *, amount: float = 0.2) -> int:
    """The fewest rounds N with ``1 - (1 - amount)**N >= target``.

    Rounds overshoot the target: with 20% rounds, 0.5 needs 4 rounds (3 give 48.8%, 4 give 59.0%)
    and 0.8 needs 8 (7 give 79.0%, 8 give 83.2%).
    """
    if not 0 < target < 1:
        raise EdgekitError(f"target sparsity must be in (0, 1), got {target}")
    if not 0 < amount < 1:
        raise EdgekitError(f"pruning amount must be a fraction in (0, 1), got {amount}")
    rounds = 1
    while 1 - (1 - amount) ** rounds < target - _SPARSITY_SLACK:
        rounds += 1
    return rounds


def _masked_names(module: nn.Module) -> list[str]:
    """Names of ``module``'s parameters that carry a torch.nn.utils.prune mask."""
    return [name.removesuffix("_orig") for name, _ in module.named_parameters(recurse=False)
            if name.endswith("_orig") and hasattr(module, name.removesuffix("_orig") + "_mask")]
