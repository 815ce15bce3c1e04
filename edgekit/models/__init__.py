"""Registered models. Importing this package registers every family, then the resolvers of
``torchvision:NAME`` and ``file.py:function`` (in that order: the second claims any name with a colon)."""

from edgekit.models import (  # noqa: F401  (registration side effect)
    compressed_resnet,
    compressed_vgg,
    keffnet,
    mobilenet_rs,
    tiny,
    torchvision_nets,
)
from edgekit.models import torchvision_zoo, user_module  # noqa: F401,E402  (resolvers, in this order)
from edgekit.models._registry import (
    InputRule,
    ModelConfig,
    ModelSpec,
    build_model,
    default_config,
    get_spec,
    list_models,
    register_model,
)
from edgekit.models.checkpoint import Checkpoint, module_from_checkpoint, read_checkpoint
from edgekit.models.weights import load_weights, save_checkpoint

__all__ = [
    "Checkpoint", "InputRule", "ModelConfig", "ModelSpec", "build_model", "default_config", "get_spec", "list_models",
    "load_weights", "module_from_checkpoint", "read_checkpoint", "register_model", "save_checkpoint",
]
