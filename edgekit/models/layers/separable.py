"""Cheaper replacements for a dense 3x3 conv: depthwise, depthwise-separable, 3x1 + 1x3.

None of them carries a BatchNorm or activation: they stand in for a bare ``nn.Conv2d``, and the
caller keeps the normalisation that followed the conv it replaces.
"""

from __future__ import annotations

from torch import nn


def depthwise3x3(in_channels: int, out_channels: int | None = None, *, stride: int = 1) -> nn.Conv2d:
    """3x3 conv with one group per input channel (``out_channels`` a multiple: a channel multiplier)."""
    out_channels = out_channels or in_channels
    if out_channels % in_channels:
        raise ValueError(f"depthwise conv needs out_channels a multiple of in_channels; got {in_channels}->{out_channels}")
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, groups=in_channels, bias=False)


class DepthwiseSeparableConv(nn.Sequential):
    """Depthwise 3x3 (spatial, per channel) followed by a pointwise 1x1 (mixes channels)."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__(depthwise3x3(in_channels, stride=stride),
                         nn.Conv2d(in_channels, out_channels, 1, bias=False))


class FactorisedConv(nn.Sequential):
    """A 3x3 conv factorised into 3x1 (in -> in) then 1x3 (in -> out): 6/9 of the weights at in == out."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, (3, 1), (stride, 1), (1, 0), bias=False),
            nn.Conv2d(in_channels, out_channels, (1, 3), (1, stride), (0, 1), bias=False),
        )


def conv3x3(in_channels: int, out_channels: int, *, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=bias)
