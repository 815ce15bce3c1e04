"""Iterative global L1 unstructured pruning: which weights go, how rounds compound, what survives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config
from edgekit.prune.unstructured import (
    make_permanent,
    prunable_conv_weights,
    prune_round,
    rounds_for_sparsity,
    sparsity,
)


def _tiny() -> nn.Module:
    torch.manual_seed(0)
    return build_model(default_config("tiny_cnn"))


def _conv_weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([getattr(m, name).detach().flatten() for m, name in prunable_conv_weights(model)])


def test_prunable_weights_are_every_conv_and_nothing_else():
    model = _tiny()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    found = prunable_conv_weights(model)
    assert [m for m, _ in found] == convs and len(convs) == 5  # the depthwise conv included
    assert {name for _, name in found} == {"weight"}


def test_a_round_zeroes_the_globally_smallest_magnitudes():
    model = _tiny()
    before = _conv_weights(model)
    prune_round(model, amount=0.2)
    after = _conv_weights(model)
    zeroed = after == 0
    assert int(zeroed.sum()) == round(0.2 * before.numel())
    # Every pruned weight was smaller in magnitude than every kept one.
    assert before[zeroed].abs().max() < before[~zeroed].abs().min()
    assert torch.equal(after[~zeroed], before[~zeroed])
    # Global ranking: layers lose different fractions (a per-layer 20% would be uniform).
    per_layer = [float((m.weight == 0).float().mean()) for m, _ in prunable_conv_weights(model)]
    assert max(per_layer) - min(per_layer) > 0.05


def test_a_second_round_prunes_a_fifth_of_what_remains():
    model = _tiny()
    total = _conv_weights(model).numel()
    prune_round(model, amount=0.2)
    first = sparsity(model)["zero_conv_weights"]
    prune_round(model, amount=0.2)
    stats = sparsity(model)
    assert stats["zero_conv_weights"] == first + round(0.2 * (total - first))
    assert stats["conv_sparsity"] == pytest.approx(1 - 0.8 ** 2, abs=2 / total)
    assert stats["conv_weights"] == total


def test_fine_tuning_cannot_revive_pruned_weights():
    model = _tiny()
    prune_round(model, amount=0.5)
    pruned = _conv_weights(model) == 0
    before = _conv_weights(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-3)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    for _ in range(3):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    after = _conv_weights(model)
    assert torch.all(after[pruned] == 0)
    assert not torch.equal(after[~pruned], before[~pruned])  # the kept weights did train


def test_make_permanent_restores_plain_keys_that_load_into_a_fresh_model():
    model = _tiny().eval()
    prune_round(model, amount=0.2)
    prune_round(model, amount=0.2)
    masked = sparsity(model)
    assert any(key.endswith("weight_mask") for key in model.state_dict())
    x = torch.randn(2, 3, 32, 32)
    expected = model(x)
    make_permanent(model)
    assert sparsity(model) == masked
    fresh = build_model(default_config("tiny_cnn")).eval()
    fresh.load_state_dict(model.state_dict())  # strict
    assert set(fresh.state_dict()) == set(model.state_dict())
    assert torch.equal(fresh(x), expected)
    assert sparsity(fresh) == masked


def test_parameter_sparsity_counts_what_the_network_computes_with():
    model = _tiny()
    prune_round(model, amount=0.3)
    # Independently of sparsity(): the effective weight is weight_orig * weight_mask in the state_dict.
    state = model.state_dict()
    effective = [state[key] * state[key.removesuffix("_orig") + "_mask"] if key.endswith("_orig") else state[key]
                 for key, _ in model.named_parameters()]
    zeros = sum(int((p == 0).sum()) for p in effective)
    stats = sparsity(model)
    assert stats["parameter_sparsity"] == zeros / sum(p.numel() for p in effective)
    assert 0 < stats["parameter_sparsity"] < stats["conv_sparsity"]


@pytest.mark.parametrize(("target", "amount", "rounds"), [
    (0.2, 0.2, 1), (0.36, 0.2, 2), (0.5, 0.2, 4), (0.8, 0.2, 8), (0.9, 0.2, 11), (0.75, 0.5, 2),
])
def test_rounds_for_sparsity_is_the_fewest_rounds_that_reach_the_target(target, amount, rounds):
    assert rounds_for_sparsity(target, amount=amount) == rounds
    assert 1 - (1 - amount) ** (rounds - 1) < target - 1e-9


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.2])
def test_fractions_outside_zero_one_are_refused(bad):
    with pytest.raises(EdgekitError, match="in \\(0, 1\\)"):
        prune_round(_tiny(), amount=bad)
    with pytest.raises(EdgekitError, match="in \\(0, 1\\)"):
        rounds_for_sparsity(bad)
    with pytest.raises(EdgekitError, match="in \\(0, 1\\)"):
        rounds_for_sparsity(0.5, amount=bad)


def test_a_model_without_convs_is_refused():
    with pytest.raises(EdgekitError, match="no Conv2d"):
        prune_round(nn.Sequential(nn.Linear(4, 2)), amount=0.2)
