"""The residual wrapper shared by the paper's blocks: body(x) + shortcut(x) (+ activation)."""

from __future__ import annotations

import torch
from torch import nn


def projection(in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = False) -> nn.Module | None:
    """1x1 conv + BN shortcut where the shapes change, ``None`` (identity) where they do not."""
    if in_channels == out_channels and stride == 1:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=bias), nn.BatchNorm2d(out_channels))


class Residual(nn.Module):
    """``post_act(body(x) + shortcut(x))``; an absent shortcut is the identity."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None = None, post_act: nn.Module | None = None) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.post_act = post_act if post_act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post_act(self.body(x) + self.shortcut(x))
