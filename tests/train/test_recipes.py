import io

import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.train.recipes import RECIPES, get_recipe, make_optimizer, make_scheduler


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_preset_builds_and_its_scheduler_state_loads_weights_only(name):
    recipe = get_recipe(name)
    model = torch.nn.Linear(4, 2)
    optimizer = make_optimizer(recipe, model.parameters())
    scheduler = make_scheduler(recipe, optimizer, steps_per_epoch=10, epochs=3)
    for _ in range(7):
        optimizer.step()
        scheduler.step(1.0) if recipe.schedule == "plateau" else scheduler.step()
    buffer = io.BytesIO()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)  # checkpoints are untrusted files
    fresh_optimizer = make_optimizer(recipe, model.parameters())
    fresh = make_scheduler(recipe, fresh_optimizer, steps_per_epoch=10, epochs=3)
    fresh.load_state_dict(loaded["scheduler"])
    assert fresh.state_dict() == scheduler.state_dict()


def _learning_rates(recipe, steps: int = 100) -> list[float]:
    """The learning rate at every step of a one-epoch run of ``steps`` steps."""
    optimizer = make_optimizer(recipe, torch.nn.Linear(2, 2).parameters())
    scheduler = make_scheduler(recipe, optimizer, steps_per_epoch=steps, epochs=1)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_onecycle_peaks_at_the_preset_lr_after_the_warm_up():
    rates = _learning_rates(get_recipe("sgd-onecycle"))
    assert max(rates) == pytest.approx(0.0125, rel=1e-3)
    assert rates.index(max(rates)) == pytest.approx(10, abs=1)  # pct_start 0.1
    assert rates[-1] < 1e-4


def test_cyclical_schedule_returns_to_its_base_several_times():
    recipe = get_recipe("rmsprop-cyclical")
    rates = _learning_rates(recipe)
    base = recipe.lr * recipe.base_lr_ratio
    minima = [i for i in range(1, 99) if rates[i] <= rates[i - 1] and rates[i] < rates[i + 1]]
    assert len(minima) >= recipe.cycles - 1
    assert min(rates) == pytest.approx(base)
    assert isinstance(make_optimizer(recipe, torch.nn.Linear(2, 2).parameters()), torch.optim.RMSprop)


def test_overrides_replace_only_what_is_given_and_unknown_preset_is_one_line():
    recipe = get_recipe("sgd-plateau").with_overrides(lr=0.5, epochs=None)
    assert (recipe.lr, recipe.epochs) == (0.5, 150)
    with pytest.raises(EdgekitError, match="unknown training preset 'adam'"):
        get_recipe("adam")


def test_onecycle_too_short_for_its_warm_up_is_a_clear_error():
    recipe = get_recipe("sgd-onecycle")
    optimizer = make_optimizer(recipe, torch.nn.Linear(2, 2).parameters())
    with pytest.raises(EdgekitError, match="needs more than 10 optimiser steps"):
        make_scheduler(recipe, optimizer, steps_per_epoch=10, epochs=1)
