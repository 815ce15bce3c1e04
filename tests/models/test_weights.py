import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config, load_weights, read_checkpoint, save_checkpoint


def test_checkpoint_round_trip_keeps_config_and_weights(tmp_path):
    config = default_config("tiny_cnn", num_classes=3, in_channels=1)
    model = build_model(config)
    path = save_checkpoint(tmp_path / "c.pt", config, model.state_dict())
    checkpoint = read_checkpoint(path)
    loaded_config, state = checkpoint.config, checkpoint.state_dict
    assert loaded_config == config
    fresh = build_model(config)
    load_weights(fresh, state, source="c.pt")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert not list(tmp_path.glob("*.tmp")), "atomic save left a temp file"


def test_bare_state_dict_is_accepted(tmp_path):
    model = build_model(default_config("tiny_cnn"))
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    checkpoint = read_checkpoint(tmp_path / "sd.pt")
    config, state = checkpoint.config, checkpoint.state_dict
    assert config is None and set(state) == set(model.state_dict())


def test_pickled_code_is_refused(tmp_path):
    torch.save({"model": build_model(default_config("tiny_cnn"))}, tmp_path / "module.pt")  # a pickled nn.Module
    with pytest.raises(EdgekitError, match="weights_only"):
        read_checkpoint(tmp_path / "module.pt")


def test_wrong_head_size_is_explained():
    small = build_model(default_config("tiny_cnn", num_classes=3))
    with pytest.raises(EdgekitError, match="classifier.weight has shape"):
        load_weights(build_model(default_config("tiny_cnn", num_classes=10)), small.state_dict(), source="x")


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(EdgekitError, match="cannot load weights"):
        read_checkpoint(tmp_path / "junk.pt")
