"""GoogLeNet and Inception-v3 train: their auxiliary heads' losses are added with the papers' weights."""

from collections import namedtuple

import numpy as np
import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.models import build_model, default_config, get_spec
from edgekit.train.auxiliary import AUXILIARY_LOSS_WEIGHTS, training_loss
from edgekit.train.data import in_memory_data
from edgekit.train.epochs import LoopSettings, fit
from edgekit.train.recipes import IN_MEMORY_RECIPE, get_recipe

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


def test_the_auxiliary_losses_are_added_with_their_weight():
    labels = torch.tensor([0, 1])
    main, aux2, aux1 = (torch.randn(2, 3) for _ in range(3))
    loss_fn = torch.nn.CrossEntropyLoss()
    logits, loss = training_loss(GoogLeNetOutputs(main, aux2, aux1), labels, loss_fn)
    expected = loss_fn(main, labels) + 0.3 * (loss_fn(aux2, labels) + loss_fn(aux1, labels))
    assert logits is main and torch.allclose(loss, expected)
    assert AUXILIARY_LOSS_WEIGHTS["GoogLeNetOutputs"] == 0.3
    # A head built without auxiliary classifiers returns None in their place.
    assert torch.allclose(training_loss(GoogLeNetOutputs(main, None, None), labels, loss_fn)[1], loss_fn(main, labels))


def test_an_unknown_tuple_output_is_one_line():
    with pytest.raises(EdgekitError, match="returned a tuple, not a logits tensor"):
        training_loss((torch.randn(2, 3), torch.randn(2, 3)), torch.tensor([0, 1]), torch.nn.CrossEntropyLoss())


def _data(name: str, size: int):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(10, 3, size, size)).astype(np.float32)
    labels = rng.integers(0, 4, 10)
    return in_memory_data((images[:8], labels[:8]), (images[8:], labels[8:]),
                          preprocessing=get_spec(name).preprocessing(input_size=size))


def _settings() -> LoopSettings:
    return LoopSettings(get_recipe(IN_MEMORY_RECIPE).with_overrides(epochs=1, batch_size=2), verbose=False)


def test_googlenet_trains_its_auxiliary_heads():
    name, size = "torchvision:googlenet", 64
    torch.manual_seed(0)
    model = build_model(default_config(name, num_classes=4, input_size=size))
    data = _data(name, size)
    heads = {k: v.clone() for k, v in model.state_dict().items() if k.lower().startswith("aux") and k.endswith("weight")}
    assert heads  # the rebuild-compatible options keep the auxiliary classifiers
    history = fit(model, data, _settings())
    assert history[0]["train_images"] == 8 and np.isfinite(history[0]["train_loss"])
    after = model.state_dict()
    assert all(not torch.equal(before, after[key]) for key, before in heads.items() if "bn" not in key)


def test_a_training_forward_that_fails_is_refused_before_the_first_step():
    # Inception-v3's auxiliary head pools 5x5 over Mixed_6e: it trains only from 299 px, though it
    # exports and runs from 75 px in eval mode.
    name = "torchvision:inception_v3"
    model = build_model(default_config(name, num_classes=4, input_size=75))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(EdgekitError, match=r"cannot train on 3x75x75 inputs: its training forward raised RuntimeError"):
        fit(model, _data(name, 75), _settings())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the probe ran on a copy


def test_the_probe_leaves_the_random_stream_as_it_was():
    from edgekit.train.auxiliary import check_training_forward

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Dropout(0.5), torch.nn.Flatten())
    torch.manual_seed(1)
    check_training_forward(model, torch.ones(2, 3, 8, 8), torch.device("cpu"))
    after_probe = torch.rand(3)
    torch.manual_seed(1)
    assert torch.equal(after_probe, torch.rand(3))
