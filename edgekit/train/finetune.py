"""Fine-tuning inside other stages (pruning): the training loop's epochs, one process, no checkpoints."""

from __future__ import annotations

from pathlib import Path

from edgekit.data.preprocessing import Preprocessing
from edgekit.models import ModelConfig
from edgekit.train.data import TrainingData
from edgekit.train.distributed import DistContext
from edgekit.train.loop import TrainConfig, evaluate_loader, make_loaders, new_session, run_epoch
from edgekit.train.recipes import Recipe


def _context() -> DistContext:
    import torch

    return DistContext(rank=0, world_size=1, local_rank=0, local_world_size=1, device=torch.device("cpu"), backend=None)


def _config(model_config: ModelConfig, data: TrainingData, recipe: Recipe, *, seed: int, verbose: bool) -> TrainConfig:
    preprocessing = Preprocessing.from_dict(data.fingerprint["preprocessing"])
    return TrainConfig(model=model_config, preprocessing=preprocessing, data=data.fingerprint["source"], out=Path("."),
                       recipe=recipe, seed=seed, device="cpu", channels_last=False, verbose=verbose)


def evaluate(model, data: TrainingData, *, model_config: ModelConfig, recipe: Recipe, seed: int = 0) -> dict:
    """Validation loss and accuracy of ``model`` on ``data.val``."""
    config = _config(model_config, data, recipe, seed=seed, verbose=False)
    _, _, val_loader = make_loaders(config, _context(), data)
    return evaluate_loader(config, _context(), model, val_loader)


def fine_tune(model, data: TrainingData, recipe: Recipe, *, model_config: ModelConfig, seed: int = 0,
              verbose: bool = True) -> list[dict]:
    """Train ``model`` in place for ``recipe.epochs`` epochs; one record (train + val metrics) per epoch."""
    import torch

    config = _config(model_config, data, recipe, seed=seed, verbose=verbose)
    context = _context()
    torch.manual_seed(seed)
    session = new_session(config, context, data, model)
    return [run_epoch(config, context, session, epoch) for epoch in range(recipe.epochs)]
