"""Channel shuffle and grouped 1x1 convolutions (ShuffleNet), as used by the compression paper.

The shuffle is written as view -> transpose -> reshape so that it exports to ONNX as
Reshape/Transpose/Reshape, which every runtime and int8 quantiser understands;
``torch.channel_shuffle`` or an index permutation would export as a custom op or a Gather.
"""

from __future__ import annotations

import torch
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` equal groups: (g, c/g) -> (c/g, g)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int, channels: int | None = None) -> None:
        super().__init__()
        if groups < 1 or (channels is not None and channels % groups):
            raise ValueError(f"channel shuffle needs channels divisible by groups; got {channels} channels, {groups} groups")
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups) if self.groups > 1 else x

    def extra_repr(self) -> str:
        return f"groups={self.groups}"


class GroupedPointwise(nn.Sequential):
    """1x1 conv with ``groups`` groups (+ BN, activation), then a channel shuffle across the groups.

    Inputs with ``ungrouped_upto`` channels or fewer keep a dense 1x1 conv and no shuffle: the paper
    groups only convs with more than 24 inputs, where a group still sees a useful number of channels.
    """

    def __init__(self, in_channels: int, out_channels: int, *, groups: int = 4, ungrouped_upto: int = 24,
                 bn: bool = True, act: type[nn.Module] | None = None, shuffle: bool = True,
                 stride: int = 1, bias: bool = False) -> None:
        g = groups if in_channels > ungrouped_upto else 1
        if in_channels % g or out_channels % g:
            raise ValueError(f"grouped 1x1 conv {in_channels}->{out_channels} is not divisible into {g} groups")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, stride, groups=g, bias=bias)]
        if bn:
            layers.append(nn.BatchNorm2d(out_channels))
        if act is not None:
            layers.append(act(inplace=True))
        if shuffle and g > 1:
            layers.append(ChannelShuffle(g, out_channels))
        super().__init__(*layers)
        self.groups = g
