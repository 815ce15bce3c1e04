"""DiCE units (Mehta et al., "DiCENet: dimension-wise convolutions"), as the compression paper uses them.

A DiCE unit convolves along each of the three dimensions of a C x H x W volume with a depthwise 3x3:
over (H, W) per channel, over (C, W) per row, over (C, H) per column. The row- and column-wise convs
treat H (or W) as their channel axis, so a unit is built for one spatial size (32x32 input here) and
refuses another instead of resampling. The three results are fused per channel, projected to the
output width and gated by a squeeze-excitation-like weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from edgekit.models.layers.channel_interleave import ChannelInterleave
from edgekit.models.layers.separable import depthwise3x3


class DiCE(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, *, height: int, width: int) -> None:
        super().__init__()
        self.size = (height, width)
        self.channel_wise = depthwise3x3(in_channels)
        self.height_wise = depthwise3x3(height)
        self.width_wise = depthwise3x3(width)
        self.merge = nn.Sequential(nn.BatchNorm2d(3 * in_channels), nn.ReLU(inplace=True),
                                   ChannelInterleave.of_groups(3 * in_channels, 3))
        # After the shuffle each run of 3 channels holds one channel's three views: fuse them per channel.
        self.fuse = nn.Sequential(nn.Conv2d(3 * in_channels, in_channels, 1, groups=in_channels, bias=False),
                                  nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, groups=math.gcd(in_channels, out_channels), bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, max(1, in_channels // 4), 1, bias=False), nn.ReLU(inplace=True),
            nn.Conv2d(max(1, in_channels // 4), out_channels, 1, bias=False), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing() and tuple(x.shape[2:]) != self.size:
            raise ValueError(f"DiCE unit built for {self.size[0]}x{self.size[1]} feature maps, got {x.shape[2]}x{x.shape[3]}")
        by_channel = self.channel_wise(x)
        by_row = self.height_wise(x.transpose(1, 2)).transpose(1, 2)     # H as channels, conv over (C, W)
        by_column = self.width_wise(x.transpose(1, 3)).transpose(1, 3)   # W as channels, conv over (H, C)
        fused = self.fuse(self.merge(torch.cat([by_channel, by_row, by_column], 1)))
        return self.project(fused) * self.gate(fused)


class StridedDiCE(nn.Module):
    """Down-sampling DiCE: [depthwise 3x3 s2 -> 1x1] | [avg-pool s2 -> DiCE], concatenated and shuffled.

    ``height`` and ``width`` are the output size (after the stride).
    """

    def __init__(self, in_channels: int, out_channels: int, *, height: int, width: int) -> None:
        super().__init__()
        if out_channels % 2:
            raise ValueError(f"strided DiCE splits its output in two halves; got {out_channels} channels")
        half = out_channels // 2
        self.left = nn.Sequential(
            depthwise3x3(in_channels, stride=2), nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True))
        self.right = nn.Sequential(nn.AvgPool2d(3, 2, 1), DiCE(in_channels, half, height=height, width=width))
        self.shuffle = ChannelInterleave.of_groups(out_channels, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(torch.cat([self.left(x), self.right(x)], 1))
