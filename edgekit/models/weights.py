"""Loading users' weights safely and writing edgekit checkpoints.

Files are loaded with ``weights_only=True``: a checkpoint from the internet cannot run code.
Two shapes are accepted: a bare state_dict, or an edgekit checkpoint
``{"format": CHECKPOINT_FORMAT, "model": ModelConfig dict, "state_dict": ...}``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import EdgekitError
from edgekit.models._registry import ModelConfig
from edgekit.outputs import disk_full, temp_file_beside

CHECKPOINT_FORMAT = "edgekit.checkpoint/1"


def read_payload(path: Path) -> dict:
    import pickle

    import torch

    if not path.exists():
        raise EdgekitError(f"weights file {path} does not exist")
    if not path.is_file():
        raise EdgekitError(f"weights file {path} is not a file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, KeyError, AttributeError,
            IndexError, UnicodeDecodeError, OverflowError, MemoryError) as error:
        # weights_only's unpickler rejects foreign objects; a damaged zip raises almost anything.
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
    classes: list[str] | None = None  # class names in output order (edgekit train records them)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """A validated checkpoint: every field is checked here, so callers never meet a KeyError."""
    path = Path(path)
    payload = read_payload(path)
    if payload.get("format") != CHECKPOINT_FORMAT:
        if "format" in payload or "model" in payload:
            raise EdgekitError(f"checkpoint {path} has format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        return Checkpoint(None, _state_dict(payload, path))
    if not isinstance(payload.get("model"), dict):
        raise EdgekitError(f"checkpoint {path} has no 'model' entry saying which network it holds")
    try:
        config = ModelConfig.from_dict(payload["model"])
    except EdgekitError as error:
        raise EdgekitError(f"checkpoint {path}: {error}") from None
    for key in ("preprocessing", "pruned_shapes"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise EdgekitError(f"checkpoint {path}: {key!r} must be a mapping")
    if payload.get("preprocessing") is not None:
        try:
            Preprocessing.from_dict(payload["preprocessing"])
        except (ValueError, TypeError, KeyError) as error:
            raise EdgekitError(f"checkpoint {path}: its preprocessing is invalid ({error})") from None
    return Checkpoint(config, _state_dict(payload.get("state_dict"), path), payload.get("preprocessing"),
                      payload.get("pruned_shapes"), _classes(payload.get("classes"), config, path))


def _state_dict(value, path: Path) -> dict:
    import torch

    if not isinstance(value, dict) or not value:
        raise EdgekitError(f"checkpoint {path} has no state_dict of tensors")
    if not all(isinstance(key, str) and isinstance(tensor, torch.Tensor) for key, tensor in value.items()):
        raise EdgekitError(f"weights {path} are not a state_dict of tensors")
    return value


def class_names_problem(classes, num_classes: int | None) -> str | None:
    """Why ``classes`` cannot name a model's outputs (checkpoints and manifests share this rule)."""
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) and c for c in classes) \
            or len(set(classes)) != len(classes):
        return "'classes' must be a list of distinct class names"
    if num_classes is not None and len(classes) != num_classes:
        return f"'classes' names {len(classes)} classes, the model has {num_classes} outputs"
    return None


def _classes(value, config: ModelConfig, path: Path) -> list[str] | None:
    if value is None:
        return None
    problem = class_names_problem(value, config.num_classes)
    if problem:
        raise EdgekitError(f"checkpoint {path}: {problem}")
    return list(value)


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
