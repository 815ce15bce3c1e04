"""Training state in checkpoints: everything ``--resume`` needs to continue bit-for-bit.

``last.pt`` is a normal edgekit checkpoint (``edgekit build --weights last.pt`` works) with one
more key, ``training``: optimiser, scheduler, grad-scaler and RNG states, the next epoch, the best
validation accuracy so far and the per-epoch history. Everything is tensors and plain Python
values, so it loads with ``torch.load(weights_only=True)`` like any untrusted file.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.models import ModelConfig
from edgekit.models.checkpoint import Checkpoint, read_checkpoint
from edgekit.models.weights import CHECKPOINT_FORMAT, load_weights, save_checkpoint

TRAINING_STATE_FORMAT = "edgekit.training-state/1"


@dataclass
class Progress:
    next_epoch: int = 0
    best_val_accuracy: float = -1.0
    history: list[dict] = field(default_factory=list)


def capture_rng() -> dict:
    import torch

    numpy_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(numpy_state[1].astype(np.int64)), "pos": int(numpy_state[2]),
                  "has_gauss": int(numpy_state[3]), "cached_gaussian": float(numpy_state[4])},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: Path, *, config: ModelConfig, model, preprocessing: dict, optimizer,
                             scheduler, scaler, progress: Progress, run: dict, classes=None) -> Path:
    training = {
        "format": TRAINING_STATE_FORMAT,
        "next_epoch": progress.next_epoch,
        "best_val_accuracy": progress.best_val_accuracy,
        "history": progress.history,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": capture_rng(),
        "run": run,
    }
    return save_checkpoint(path, config, cpu_state_dict(model), preprocessing=preprocessing, training=training,
                           classes=classes)


def cpu_state_dict(model) -> dict:
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}


def _differences(saved: dict, current: dict, keys: tuple[str, ...]) -> list[str]:
    return [f"{key} ({saved.get(key)!r} in the checkpoint, {current.get(key)!r} now)"
            for key in keys if saved.get(key) != current.get(key)]


def read_training_checkpoint(path: Path, *, config: ModelConfig, run: dict) -> Checkpoint:
    """The checkpoint after checking it holds training state of this run; one-line errors otherwise."""
    if not path.is_file():
        raise EdgekitError(f"nothing to resume: {path} does not exist (train without --resume first)")
    checkpoint = read_checkpoint(path)
    if checkpoint.config is None:
        raise EdgekitError(f"{path} is not an edgekit checkpoint (no format {CHECKPOINT_FORMAT!r}); cannot resume from it")
    training = checkpoint.training
    if training is None or training.get("format") != TRAINING_STATE_FORMAT:
        raise EdgekitError(f"{path} holds weights only, no training state to resume (edgekit train writes it to last.pt)")
    if checkpoint.config != config:
        raise EdgekitError(f"{path} was trained as {checkpoint.config.to_dict()}, this run asks for {config.to_dict()}")
    changed = _differences(training.get("run", {}), run, ("recipe", "data", "seed", "augment", "amp"))
    if changed:
        raise EdgekitError(f"{path} comes from a different run; changed: {'; '.join(changed)}")
    return checkpoint


def restore_training(checkpoint: Checkpoint, *, path: Path, model, optimizer, scheduler, scaler) -> Progress:
    training = checkpoint.training
    try:
        load_weights(model, checkpoint.state_dict, source=str(path))
        optimizer.load_state_dict(training["optimizer"])
        scheduler.load_state_dict(training["scheduler"])
        scaler.load_state_dict(training["scaler"])
        restore_rng(training["rng"])
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        raise EdgekitError(f"{path}: training state is damaged or from another version ({error})") from error
    return Progress(int(training["next_epoch"]), float(training["best_val_accuracy"]), list(training["history"]))
