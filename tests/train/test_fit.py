"""In-memory training: ``fit`` on arrays, the wall-clock budget, the adamw-onecycle batch handling."""

import numpy as np
import torch

from edgekit.models import build_model, default_config, get_spec
from edgekit.train.data import in_memory_data, load_arrays, save_arrays
from edgekit.train.epochs import LoopSettings, evaluate, fit
from edgekit.train.recipes import IN_MEMORY_RECIPE, get_recipe


def _data(train: int = 65, val: int = 20):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, train + val)
    images = rng.normal(size=(train + val, 3, 32, 32)).astype(np.float32)
    return in_memory_data((images[:train], labels[:train]), (images[train:], labels[train:]),
                          preprocessing=get_spec("tiny_cnn").preprocessing())


def _settings(**overrides) -> LoopSettings:
    recipe = get_recipe(IN_MEMORY_RECIPE).with_overrides(epochs=overrides.pop("epochs", 2), batch_size=32)
    return LoopSettings(recipe, verbose=False, **overrides)


def test_fit_trains_partial_batches_but_skips_a_final_batch_of_one():
    model = build_model(default_config("tiny_cnn", num_classes=4))
    history = fit(model, _data(train=65), _settings())  # 32 + 32 + 1: the one image cannot train BatchNorm
    assert [record["train_images"] for record in history] == [64, 64]
    history = fit(model, _data(train=70), _settings())  # 32 + 32 + 6: the partial batch trains
    assert [record["train_images"] for record in history] == [70, 70]
    assert not model.training and history[-1]["val_accuracy"] == evaluate(model, _data(train=70).val)["val_accuracy"]


def test_the_wall_clock_budget_stops_at_the_first_epoch_boundary_past_it():
    model = build_model(default_config("tiny_cnn", num_classes=4))
    assert len(fit(model, _data(), _settings(epochs=50, max_seconds=1e-3))) == 1


def test_arrays_survive_the_npz_round_trip(tmp_path):
    data = _data()
    loaded = load_arrays(save_arrays(data, tmp_path / "data.npz"))
    assert torch.equal(loaded.train.images, data.train.images) and torch.equal(loaded.val.labels, data.val.labels)
    assert loaded.classes == data.classes and loaded.fingerprint == data.fingerprint
