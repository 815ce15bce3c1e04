"""Grouped pointwise convolutions with channel interleaving: kEffNet's replacement for a 1x1 conv.

Schwarz Schuler et al.: "Grouped Pointwise Convolutions Significantly Reduces Parameters in
EfficientNet" (2021) and the 2022 follow-up "... without Divisibility Constraints". The layouts
follow the authors' Keras code (k-neural-api ``kConv2DType2`` and ``kConv2DType10``/``kGroupConv2D``)
so that parameter counts match theirs exactly.

A dense 1x1 conv Cin -> F costs Cin * F weights. Splitting it into G groups costs Cin * F / G, but
each output then only sees Cin / G inputs; interleaving the channels and a second grouped conv
mix information across the groups again, for a fraction of the dense cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from edgekit.models.layers.channel_interleave import ChannelInterleave

NormLayer = Callable[[int], nn.Module]
ActivationLayer = Callable[[], nn.Module]


def _conv_unit(in_channels: int, out_channels: int, groups: int, *, norm_layer: NormLayer | None,
               activation_layer: ActivationLayer | None, bias: bool) -> nn.Sequential:
    """1x1 conv (+ norm) (+ activation): the authors' ``conv2d_bn``."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=bias)]
    if norm_layer is not None:
        layers.append(norm_layer(out_channels))
    if activation_layer is not None:
        layers.append(activation_layer())
    return nn.Sequential(*layers)


def pointwise_groups(in_channels: int, out_channels: int, channels_per_group: int) -> int:
    """2021 rule: the largest d <= Cin // ch dividing both Cin and F (1: leave the conv dense)."""
    for d in range(min(in_channels // channels_per_group, out_channels), 1, -1):
        if in_channels % d == 0 and out_channels % d == 0:
            return d
    return 1


def _unit_options(channels_per_group: int, norm_layer: NormLayer | None, activation_layer: ActivationLayer | None,
                  bias: bool | None) -> dict:
    if channels_per_group < 1:
        raise ValueError(f"channels_per_group must be a positive integer, got {channels_per_group}")
    # torchvision's convention: a conv has a bias exactly when no norm layer follows it.
    return dict(norm_layer=norm_layer, activation_layer=activation_layer,
                bias=norm_layer is None if bias is None else bias)


class _PointwiseBase(nn.Module):
    """K = conv1(x); y = interleave(K); out = conv2(y) + K where conv2 exists, else y."""

    conv1: nn.Module
    interleave: nn.Module | None
    conv2: nn.Module | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.conv1(x)
        y = k if self.interleave is None else self.interleave(k)
        if self.conv2 is None:
            return y
        # The skip comes from before the interleave, as in the papers' diagram (D6).
        return self.conv2(y) + k


class GroupedPointwiseInterleave(_PointwiseBase):
    """kEffNet (2021) replacement for a ``Cin -> F`` 1x1 conv.

    ``G = pointwise_groups(Cin, F, channels_per_group)``; with ``G <= 1`` it is the plain 1x1 conv.
    Otherwise a G-group conv, the interleave (when a group has more than one output), and, only
    where the layer does not expand (``Cin >= F``), a second G-group conv added to the first.
    ``norm_layer``/``activation_layer`` follow each conv, as in the original layer; ``bias``
    defaults to "no norm layer" (torchvision's convention: SE convs have a bias, no BN).
    """

    def __init__(self, in_channels: int, out_channels: int, *, channels_per_group: int = 16,
                 norm_layer: NormLayer | None = nn.BatchNorm2d, activation_layer: ActivationLayer | None = None,
                 bias: bool | None = None) -> None:
        super().__init__()
        unit = _unit_options(channels_per_group, norm_layer, activation_layer, bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.groups = pointwise_groups(in_channels, out_channels, channels_per_group)
        self.conv1 = _conv_unit(in_channels, out_channels, self.groups, **unit)
        per_group = out_channels // self.groups
        self.interleave = ChannelInterleave(out_channels, per_group) if self.groups > 1 and per_group > 1 else None
        self.conv2 = None
        if self.groups > 1 and in_channels >= out_channels:
            self.conv2 = _conv_unit(out_channels, out_channels, self.groups, **unit)


class PaddedGroupConv(nn.Module):
    """A grouped 1x1 conv for any Cin and F (the 2022 paper's ``kGroupConv2D``).

    ``G = ceil(Cin / ch)`` groups (at most F). The input is padded to ``G * ch`` channels by
    repeating its channels (when G had to be capped at F, each group takes ``ceil(Cin / G)``).
    When F is not a multiple of G, ``F - F % G`` filters run as G groups and the remaining
    ``F % G`` filters as a second path of one filter per group over the first channels.
    """

    def __init__(self, in_channels: int, out_channels: int, *, channels_per_group: int,
                 norm_layer: NormLayer | None, activation_layer: ActivationLayer | None, bias: bool) -> None:
        super().__init__()
        unit = dict(norm_layer=norm_layer, activation_layer=activation_layer, bias=bias)
        self.in_channels = in_channels
        self.groups = min(math.ceil(in_channels / channels_per_group), out_channels)
        if self.groups <= 1:
            self.padded_channels, self.remainder_inputs = in_channels, 0
            self.main, self.remainder = _conv_unit(in_channels, out_channels, 1, **unit), None
            return
        per_group = max(channels_per_group, math.ceil(in_channels / self.groups))
        self.padded_channels = self.groups * per_group
        extra = out_channels % self.groups
        self.main = _conv_unit(self.padded_channels, out_channels - extra, self.groups, **unit)
        self.remainder_inputs = per_group * extra
        self.remainder = _conv_unit(self.remainder_inputs, extra, extra, **unit) if extra else None

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        # Repeat whole copies of the input, then its first channels (Keras ``FitChannelCountTo``).
        copies, extra = divmod(self.padded_channels, self.in_channels)
        parts = [x] * copies + ([x[:, :extra]] if extra else [])
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._pad(x)
        y = self.main(x)
        if self.remainder is None:
            return y
        return torch.cat([y, self.remainder(x[:, :self.remainder_inputs])], dim=1)


class PaddedGroupedPointwiseInterleave(_PointwiseBase):
    """kEffNet 2022 replacement for a 1x1 conv, without divisibility constraints (``kConv2DType10``).

    Layers with few inputs stay dense (Cin <= 2 * ch, or Cin <= ch for an expansion: grouping
    would save little). Otherwise a :class:`PaddedGroupConv`, and where the layer does not expand
    (Cin >= F) an interleave with step ``F // ch`` and a second :class:`PaddedGroupConv` whose
    output is added to the first.
    """

    def __init__(self, in_channels: int, out_channels: int, *, channels_per_group: int = 16,
                 norm_layer: NormLayer | None = nn.BatchNorm2d, activation_layer: ActivationLayer | None = None,
                 bias: bool | None = None) -> None:
        super().__init__()
        unit = _unit_options(channels_per_group, norm_layer, activation_layer, bias)
        self.in_channels, self.out_channels = in_channels, out_channels
        expands = out_channels > in_channels
        self.interleave = self.conv2 = None
        if not (in_channels > 2 * channels_per_group or (expands and in_channels > channels_per_group)):
            self.groups = 1
            self.conv1 = _conv_unit(in_channels, out_channels, 1, **unit)
            return
        self.conv1 = PaddedGroupConv(in_channels, out_channels, channels_per_group=channels_per_group, **unit)
        self.groups = self.conv1.groups
        if self.groups > 1 and not expands:
            step = out_channels // channels_per_group
            self.interleave = ChannelInterleave(out_channels, step) if step > 1 else None
            self.conv2 = PaddedGroupConv(out_channels, out_channels, channels_per_group=channels_per_group, **unit)
