"""Reading checkpoints: the one place a checkpoint file is opened, and the one way to a ready module.

Files are loaded with ``weights_only=True``: a checkpoint from the internet cannot run code.
Two shapes are accepted: a bare state_dict, or an edgekit checkpoint
``{"format": CHECKPOINT_FORMAT, "model": ModelConfig dict, "state_dict": ...}`` as
:func:`edgekit.models.weights.save_checkpoint` writes it. Every field is validated here, so
callers read a typed :class:`Checkpoint` and never meet a KeyError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.data.preprocessing import Preprocessing
from edgekit.models._registry import ModelConfig, build_model
from edgekit.models.weights import CHECKPOINT_FORMAT, class_names_problem, load_weights


@dataclass(frozen=True)
class Checkpoint:
    source: str  # the path as the caller gave it, for messages
    config: ModelConfig | None  # None for a bare state_dict
    state_dict: dict
    preprocessing: dict | None = None  # Preprocessing.to_dict() the weights were trained with
    # Channel-pruned networks: module sizes to apply to a fresh registry model before loading.
    pruned_shapes: dict | None = None
    classes: list[str] | None = None  # class names in output order (edgekit train records them)
    run: dict | None = None  # best.pt: the training run's identity (data split, seed, recipe)
    metrics: dict | None = None  # best.pt: the epoch record (validation accuracy, loss) that made it best
    training: dict | None = None  # last.pt: optimiser, scheduler, RNG states for --resume (see edgekit.train.state)


def read_checkpoint(path: str | Path) -> Checkpoint:
    """A validated checkpoint, or an EdgekitError saying in one line what is wrong with the file."""
    source, path = str(path), Path(path)
    payload = _open(path)
    if payload.get("format") != CHECKPOINT_FORMAT:
        if "format" in payload or "model" in payload:
            raise EdgekitError(f"checkpoint {path} has format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
        return Checkpoint(source, None, _state_dict(payload, path))
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
    return Checkpoint(source, config, _state_dict(payload.get("state_dict"), path),
                      preprocessing=payload.get("preprocessing"), pruned_shapes=payload.get("pruned_shapes"),
                      classes=_classes(payload.get("classes"), config, path), run=_mapping_or_none(payload.get("run")),
                      metrics=_mapping_or_none(payload.get("metrics")),
                      training=_mapping_or_none(payload.get("training")))


def module_from_checkpoint(checkpoint: Checkpoint, *, config: ModelConfig | None = None):
    """The checkpoint's network, ready for inference: built (with its pruned layout), weights loaded
    strictly (NaN/inf refused), in eval mode. ``config`` overrides the recorded one (explicit CLI flags)
    and is required for a bare state_dict."""
    config = config if config is not None else checkpoint.config
    if config is None:
        raise EdgekitError(f"{checkpoint.source} is a bare state_dict; say which model it is for")
    module = build_model(config, pruned_shapes=checkpoint.pruned_shapes)
    load_weights(module, checkpoint.state_dict, source=checkpoint.source)
    return module.eval()


def _open(path: Path) -> dict:
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


def _state_dict(value, path: Path) -> dict:
    import torch

    if not isinstance(value, dict) or not value:
        raise EdgekitError(f"checkpoint {path} has no state_dict of tensors")
    if not all(isinstance(key, str) and isinstance(tensor, torch.Tensor) for key, tensor in value.items()):
        raise EdgekitError(f"weights {path} are not a state_dict of tensors")
    return value


def _classes(value, config: ModelConfig, path: Path) -> list[str] | None:
    if value is None:
        return None
    problem = class_names_problem(value, config.num_classes)
    if problem:
        raise EdgekitError(f"checkpoint {path}: {problem}")
    return list(value)


def _mapping_or_none(value) -> dict | None:
    # Bookkeeping edgekit writes as mappings; anything else is not edgekit's and counts as absent,
    # so a resume reports "no training state" and a prune warns that the split is unknown.
    return value if isinstance(value, dict) else None
