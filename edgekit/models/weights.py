"""Loading users' weights safely and writing edgekit checkpoints.

Files are loaded with ``weights_only=True``: a checkpoint from the internet cannot run code.
Two shapes are accepted: a bare state_dict, or an edgekit checkpoint
``{"format": CHECKPOINT_FORMAT, "model": ModelConfig dict, "state_dict": ...}``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.models._registry import ModelConfig

CHECKPOINT_FORMAT = "edgekit.checkpoint/1"


def read_payload(path: Path) -> dict:
    import pickle

    import torch

    if not path.is_file():
        raise EdgekitError(f"weights file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as error:
        raise EdgekitError(
            f"cannot load weights {path}: not a PyTorch state_dict or checkpoint "
            "(loaded with weights_only=True, so pickled code is refused)"
        ) from error
    if not isinstance(payload, dict):
        raise EdgekitError(f"weights file {path} holds a {type(payload).__name__}, expected a state_dict")
    return payload


@dataclass(frozen=True)
class Checkpoint:
    config: ModelConfig | None  # None for a bare state_dict
    state_dict: dict
    preprocessing: dict | None = None  # Preprocessing.to_dict() the weights were trained with
    # Channel-pruned networks: module sizes to apply to a fresh registry model before loading.
    pruned_shapes: dict | None = None


def read_checkpoint(path: str | Path) -> Checkpoint:
    payload = read_payload(Path(path))
    if payload.get("format") == CHECKPOINT_FORMAT:
        return Checkpoint(ModelConfig.from_dict(payload["model"]), payload["state_dict"], payload.get("preprocessing"),
                          payload.get("pruned_shapes"))
    return Checkpoint(None, payload)


def load_checkpoint(path: str | Path) -> tuple[ModelConfig | None, dict]:
    """(model config if the file records one, state_dict)."""
    checkpoint = read_checkpoint(path)
    return checkpoint.config, checkpoint.state_dict


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
    model.load_state_dict(state_dict)


def save_checkpoint(path: str | Path, config: ModelConfig, state_dict: dict, **extra) -> Path:
    """Write atomically: a crash mid-write never leaves a truncated checkpoint under ``path``."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CHECKPOINT_FORMAT, "model": config.to_dict(), "state_dict": state_dict, **extra}
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
