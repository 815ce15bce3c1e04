"""Grouped 1x1 convolutions followed by a channel shuffle (ShuffleNet), as used by the compression paper."""

from __future__ import annotations

from torch import nn

from edgekit.models.layers.channel_interleave import ChannelInterleave


class GroupedPointwiseShuffle(nn.Sequential):
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
            layers.append(ChannelInterleave.of_groups(out_channels, g))
        super().__init__(*layers)
        self.groups = g
