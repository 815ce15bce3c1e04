"""Registering a table of architecture columns (the compression paper's ResNet and VGG tables)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn

from edgekit.data.preprocessing import CIFAR10_MEAN, CIFAR10_STD
from edgekit.models._registry import register_model


def register_columns(columns: Iterable, network: Callable[..., nn.Module], *, prefix: str, title: str) -> None:
    """Register ``{prefix}{column.col}`` for every column: a 32x32 CIFAR model built by ``network``."""
    for column in columns:
        name = f"{prefix}{column.col}"

        def build(*, num_classes: int, in_channels: int = 3, _column=column) -> nn.Module:
            return network(_column, num_classes=num_classes, in_channels=in_channels)

        build.__name__ = build.__qualname__ = name
        build.__doc__ = f"{title} (32x32), compression paper column {column.col}: {column.summary}."
        register_model(name, input_size=32, description=f"{title} 32x32, paper column {column.col}: {column.summary}",
                       mean=CIFAR10_MEAN, std=CIFAR10_STD, num_classes=10)(build)
