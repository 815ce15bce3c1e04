"""Named training recipes (optimiser + learning-rate schedule + defaults) from the seed papers.

A recipe is data: the command line may override its learning rate, weight decay, batch size and
epochs, and the resolved values are written to the run's ``config.json`` and every checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from edgekit.core.errors import EdgekitError


@dataclass(frozen=True)
class Recipe:
    name: str
    optimizer: str  # "sgd" | "rmsprop" | "adamw"
    lr: float  # peak learning rate for OneCycle/cyclical schedules, the starting one otherwise
    weight_decay: float
    batch_size: int  # global: the sum over all processes
    epochs: int
    schedule: str  # "onecycle" | "cyclical" | "plateau"
    momentum: float = 0.9
    pct_start: float = 0.1  # OneCycle warm-up fraction
    cycles: int = 5  # cyclical: number of triangular cycles over the whole run
    base_lr_ratio: float = 0.01  # cyclical: base_lr = lr * ratio
    plateau_patience: int = 5
    plateau_factor: float = 0.1
    # False: every batch is full (the last partial one is dropped). True: the partial last batch
    # trains too, unless it holds one image, which BatchNorm cannot normalise in training mode.
    partial_batches: bool = False
    source: str = ""

    @property
    def steps_per_batch(self) -> bool:
        """True when the scheduler advances every optimiser step, False when once per epoch."""
        return self.schedule in ("onecycle", "cyclical")

    def with_overrides(self, **overrides) -> Recipe:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        record = asdict(self)
        if not self.partial_batches:
            # Recorded only when set, so runs written before the field existed still resume.
            del record["partial_batches"]
        return record


IN_MEMORY_RECIPE = "adamw-onecycle"

RECIPES = {
    recipe.name: recipe
    for recipe in (
        Recipe("sgd-onecycle", optimizer="sgd", lr=0.0125, weight_decay=2e-5, batch_size=128, epochs=150,
               schedule="onecycle", pct_start=0.1,
               source="Sobolewski & Szyc 2024 (compressed ResNet-101/VGG-19): SGD, OneCycle max lr 0.0125, "
                      "pct_start 0.1, wd 2e-5, batch 128, 150 epochs"),
        Recipe("sgd-plateau", optimizer="sgd", lr=0.01, weight_decay=5e-4, batch_size=128, epochs=150,
               schedule="plateau", plateau_patience=5,
               source="Sobolewski & Szyc 2023: SGD lr 0.01 momentum 0.9 wd 5e-4, ReduceLROnPlateau on the "
                      "training loss (patience 5)"),
        Recipe("rmsprop-cyclical", optimizer="rmsprop", lr=1e-3, weight_decay=1e-5, batch_size=64, epochs=50,
               schedule="cyclical", cycles=5, momentum=0.0,
               source="Schwarz Schuler et al. (kEffNet): RMSprop, cyclical learning rate, batch 64, 50 epochs. "
                      "The cycle shape is Smith's triangular2 (the papers do not give theirs)"),
        Recipe(IN_MEMORY_RECIPE, optimizer="adamw", lr=3e-3, weight_decay=1e-4, batch_size=64, epochs=10,
               schedule="onecycle", pct_start=0.3, partial_batches=True,
               source="edgekit: short runs on in-memory arrays (the demo, the search's candidates, the tests); "
                      "AdamW, OneCycle with torch's default 30% warm-up, every image of an epoch trained"),
    )
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise EdgekitError(f"unknown training preset {name!r}; known: {', '.join(sorted(RECIPES))}") from None


def make_optimizer(recipe: Recipe, parameters):
    import torch

    if recipe.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "rmsprop":
        # Keras' RMSprop defaults (rho 0.9); torch's alpha is the same decay.
        return torch.optim.RMSprop(parameters, lr=recipe.lr, alpha=0.9, momentum=recipe.momentum,
                                   weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise EdgekitError(f"unknown optimizer {recipe.optimizer!r} in recipe {recipe.name}")


def make_scheduler(recipe: Recipe, optimizer, *, steps_per_epoch: int, epochs: int):
    import torch

    total_steps = max(1, steps_per_epoch * epochs)
    if recipe.schedule == "onecycle":
        if recipe.pct_start * total_steps <= 1:
            # torch divides by zero when the warm-up phase is shorter than one step.
            raise EdgekitError(f"the one-cycle schedule needs more than {1 / recipe.pct_start:.0f} optimiser steps "
                               f"(warm-up {recipe.pct_start:.0%}); this run has {total_steps}: train longer "
                               "or lower --batch-size")
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=total_steps,
                                                   pct_start=recipe.pct_start)
    if recipe.schedule == "cyclical":
        half_cycle = max(1, total_steps // (2 * recipe.cycles))
        return torch.optim.lr_scheduler.CyclicLR(
            optimizer, base_lr=recipe.lr * recipe.base_lr_ratio, max_lr=recipe.lr, step_size_up=half_cycle,
            mode="triangular2", cycle_momentum=False,  # RMSprop without momentum has nothing to cycle
        )
    if recipe.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=recipe.plateau_factor,
                                                          patience=recipe.plateau_patience)
    raise EdgekitError(f"unknown schedule {recipe.schedule!r} in recipe {recipe.name}")
