"""Inverted residual block (MobileNetV2) with the compression paper's projection shortcut."""

from __future__ import annotations

from torch import nn

from edgekit.models.layers.residual import Residual, projection
from edgekit.models.layers.separable import depthwise3x3


def inverted_residual(in_channels: int, hidden: int, out_channels: int, *, stride: int = 1) -> Residual:
    """1x1 expand + BN + ReLU6 -> depthwise 3x3 + BN + ReLU6 -> 1x1 linear projection + BN.

    Unlike MobileNetV2, blocks that change the shape keep a shortcut (1x1 conv + BN), as in the paper:
    its ResNet-101 keeps a residual connection on every block.
    """
    body = nn.Sequential(
        nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
        depthwise3x3(hidden, stride=stride), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
        nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels),
    )
    return Residual(body, projection(in_channels, out_channels, stride=stride))
