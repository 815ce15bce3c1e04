"""Writing edgekit checkpoints and loading a state_dict into a module.

An edgekit checkpoint is ``{"format": CHECKPOINT_FORMAT, "model": ModelConfig dict, "state_dict": ...}``
plus optional entries (preprocessing, classes, pruned_shapes, run, training). Reading one is
:func:`edgekit.models.checkpoint.read_checkpoint`'s job alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import disk_full, temp_file_beside
from edgekit.models._registry import ModelConfig

CHECKPOINT_FORMAT = "edgekit.checkpoint/1"


def class_names_problem(classes, num_classes: int | None) -> str | None:
    """Why ``classes`` cannot name a model's outputs (checkpoints and manifests share this rule)."""
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) and c for c in classes) \
            or len(set(classes)) != len(classes):
        return "'classes' must be a list of distinct class names"
    if num_classes is not None and len(classes) != num_classes:
        return f"'classes' names {len(classes)} classes, the model has {num_classes} outputs"
    return None


def load_weights(model, state_dict: dict, *, source: str) -> None:
    """Load ``state_dict`` strictly, turning shape/key mismatches into one readable line."""
    import torch

    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise EdgekitError(f"weights {source} are not a state_dict of tensors")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise EdgekitError(
            f"weights {source} do not fit the model: {len(missing)} missing keys (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:2]})"
        )
    for key, tensor in state_dict.items():
        if tensor.shape != expected[key].shape:
            raise EdgekitError(
                f"weights {source} do not fit the model: {key} has shape {tuple(tensor.shape)}, "
                f"model expects {tuple(expected[key].shape)} (check --num-classes / --in-channels)"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            # Caught here: later it would surface as a parity "failure" that no tolerance fixes.
            raise EdgekitError(f"weights {source} contain NaN or infinite values (in {key}); the training diverged "
                               "or the file is damaged")
    model.load_state_dict(state_dict)


def save_checkpoint(path: str | Path, config: ModelConfig, state_dict: dict, **extra) -> Path:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint under ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "model": config.to_dict(), "state_dict": state_dict, **extra}
    tmp_name = temp_file_beside(path)
    try:
        torch.save(payload, tmp_name)
        os.replace(tmp_name, path)
    except BaseException as error:
        full = isinstance(error, (OSError, RuntimeError)) and disk_full(path.parent)
        Path(tmp_name).unlink(missing_ok=True)
        if full:  # torch.save reports a full disk as a RuntimeError from its zip writer
            raise EdgekitError(f"no space left on the device holding {path}; the checkpoint was not written") from error
        raise
    return path
