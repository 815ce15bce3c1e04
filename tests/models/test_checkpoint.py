"""The one checkpoint reader and the one way from a checkpoint to a ready module."""

from __future__ import annotations

import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config, module_from_checkpoint, read_checkpoint, save_checkpoint
from edgekit.prune import prune_channels, pruned_shapes


def _example() -> torch.Tensor:
    return torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_a_channel_pruned_checkpoint_becomes_the_same_network_in_eval_mode(tmp_path):
    config = default_config("tiny_cnn")
    torch.manual_seed(0)
    model = build_model(config).eval()
    prune_channels(model, _example(), ratio=0.5)
    path = save_checkpoint(tmp_path / "pruned.pt", config, model.state_dict(), pruned_shapes=pruned_shapes(model),
                           run={"seed": 3}, metrics={"val_accuracy": 0.5}, training={"format": "x"})
    checkpoint = read_checkpoint(path)
    assert (checkpoint.run, checkpoint.metrics, checkpoint.training) == ({"seed": 3}, {"val_accuracy": 0.5},
                                                                          {"format": "x"})
    rebuilt = module_from_checkpoint(checkpoint)
    assert not rebuilt.training
    with torch.no_grad():
        assert torch.equal(rebuilt(_example()), model(_example()))


def test_a_bare_state_dict_needs_a_config_and_refuses_nan(tmp_path):
    config = default_config("tiny_cnn", num_classes=3)
    state = build_model(config).state_dict()
    torch.save(state, tmp_path / "sd.pt")
    checkpoint = read_checkpoint(tmp_path / "sd.pt")
    assert checkpoint.config is None and checkpoint.run is None and checkpoint.training is None
    with pytest.raises(EdgekitError, match="bare state_dict"):
        module_from_checkpoint(checkpoint)
    assert set(module_from_checkpoint(checkpoint, config=config).state_dict()) == set(state)
    state["classifier.weight"][0, 0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    with pytest.raises(EdgekitError, match="NaN"):
        module_from_checkpoint(read_checkpoint(tmp_path / "nan.pt"), config=config)
