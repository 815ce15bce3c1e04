"""Registered models. The first use of the registry (``get_spec``, ``list_models``, or any name below)
registers every family, then the resolvers of ``torchvision:NAME`` and ``file.py:function`` (in that
order: the second claims any name with a colon). Importing the package alone imports no torch, so
``edgekit.artifact.manifest`` (which needs ``ModelConfig``) stays light."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "InputRule": "_registry", "ModelConfig": "_registry", "ModelSpec": "_registry", "build_model": "_registry",
    "default_config": "_registry", "get_spec": "_registry", "list_models": "_registry",
    "register_model": "_registry", "Checkpoint": "checkpoint", "module_from_checkpoint": "checkpoint",
    "read_checkpoint": "checkpoint", "load_weights": "weights", "save_checkpoint": "weights",
}
_FAMILIES = ("compressed_resnet", "compressed_vgg", "keffnet", "mobilenet_rs", "tiny", "torchvision_nets",
             "torchvision_zoo", "user_module")  # the resolvers last, in this order

__all__ = sorted(_EXPORTS)


def register_families() -> None:
    """Import every family once (registration is their import's side effect)."""
    for family in _FAMILIES:
        importlib.import_module(f"{__name__}.{family}")


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    register_families()
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value
