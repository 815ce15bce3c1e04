"""VGG-19-BN for 32x32 input, compressed column by column as in Sobolewski & Szyc.

The paper's VGG-19 table (CIFAR-100) starts from VGG-19-BN with a 512-4096-4096 classifier and ends
at 0.2 M parameters. ``vgg19_c32_colN`` is column N; ``COLUMNS`` is the table as configuration rows.
From column 2 on, the fifth max-pool is dropped and global average pooling feeds the classifier.
Fire modules keep VGG's widths: squeeze = width / 8, expand 1x1 and 3x3 = width / 2 each.

Layouts follow the authors' public code. Deliberate differences, none changing a parameter count:
no dropout after the linear classifier, no ReLU on the logits of the "no FC" heads, and the BN after
the depthwise expand of columns 8 and 12 is applied (their code computes it and drops the result).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from edgekit.models._columns import register_columns
from edgekit.models.layers.channel_interleave import ChannelInterleave
from edgekit.models.layers.dice import DiCE
from edgekit.models.layers.fire import Fire, with_bn
from edgekit.models.layers.ghost import GhostModule
from edgekit.models.layers.grouped_pointwise_shuffle import GroupedPointwiseShuffle
from edgekit.models.layers.separable import (
    DepthwiseSeparableConv,
    FactorisedConv,
    conv3x3,
    depthwise3x3,
)
from edgekit.models.layers.squeeze_excitation import SqueezeExcitation

# VGG-19 ("E"): conv widths, "M" = 2x2 max-pool.
VGG19 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


@dataclass(frozen=True)
class VGGColumn:
    """One column of the paper's VGG-19 table: which techniques are on.

    unit: what replaces each conv3x3 + BN + ReLU: conv3x3 | factorised (3x1 + 1x3) | separable
        (depthwise 3x3 + 1x1) | fire.
    squeeze, expand1x1, expand3x3: the fire module's branches (keys of ``_SQUEEZE``, ``_EXPAND1``,
        ``_EXPAND3``); fire_shuffle: channel shuffle groups after the concatenation (1: none).
    se: squeeze-excitation (0.25) after every unit.
    head: mlp (512-4096-4096-classes, the baseline) | linear (GAP + FC) | conv_bn / conv (no FC:
        1x1 conv to classes, with or without BN, then GAP).
    """

    col: int
    summary: str
    unit: str = "conv3x3"
    squeeze: str = "conv"
    expand1x1: str = "conv"
    expand3x3: str = "conv3x3"
    fire_shuffle: int = 1
    se: bool = False
    head: str = "linear"


_FIRE_DW = {"unit": "fire", "expand3x3": "depthwise"}
_FIRE_GROUPED = {"unit": "fire", "squeeze": "grouped", "expand1x1": "grouped", "expand3x3": "depthwise", "fire_shuffle": 8}
_FIRE_GHOST = {"unit": "fire", "squeeze": "ghost", "expand1x1": "pointwise"}
COLUMNS = (
    VGGColumn(1, "baseline: VGG-19-BN, classifier 512-4096-4096", head="mlp"),
    VGGColumn(2, "global average pooling + one FC layer"),
    VGGColumn(3, "column 2 with every 3x3 factorised into 3x1 + 1x3", unit="factorised"),
    VGGColumn(4, "column 2 with depthwise-separable convs", unit="separable"),
    VGGColumn(5, "column 2 with fire modules (squeeze 1x1 -> 1x1 | 3x3)", unit="fire"),
    VGGColumn(6, "fire modules with a depthwise 3x3 expand", **_FIRE_DW),
    VGGColumn(7, "column 6 without FC: 1x1 conv to classes + BN, GAP", head="conv_bn", **_FIRE_DW),
    VGGColumn(8, "column 7 + grouped 1x1 convs (4 groups above 24 inputs) and channel shuffle; the smallest",
              head="conv_bn", **_FIRE_GROUPED),
    VGGColumn(9, "fire modules with ghost squeeze and ghost 3x3 expand, no FC",
              expand3x3="ghost", head="conv", **_FIRE_GHOST),
    VGGColumn(10, "column 9 + grouped 1x1 + shuffle in the ghost expand",
              expand3x3="ghost_grouped", head="conv", **_FIRE_GHOST),
    VGGColumn(11, "column 10 + squeeze-excitation (0.25)",
              expand3x3="ghost_grouped", head="conv", se=True, **_FIRE_GHOST),
    VGGColumn(12, "column 8 + squeeze-excitation (0.25)", head="conv_bn", se=True, **_FIRE_GROUPED),
    VGGColumn(13, "fire modules with a DiCE 3x3 expand, no FC (follow-up paper); 32x32 only",
              unit="fire", squeeze="grouped_gcd", expand1x1="pointwise", expand3x3="dice", head="conv_bn"),
)
COLUMNS_BY_NUMBER = {c.col: c for c in COLUMNS}

# Fire branches: (in_channels, out_channels[, spatial size]) -> module. Each carries its BN.
_SQUEEZE = {
    "conv": lambda cin, cout: nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)),
    "grouped": lambda cin, cout: GroupedPointwiseShuffle(cin, cout, groups=4, act=nn.ReLU),
    "grouped_gcd": lambda cin, cout: GroupedPointwiseShuffle(cin, cout, groups=math.gcd(cin, cout), act=nn.ReLU),
    "ghost": lambda cin, cout: GhostModule(cin, cout),
}
_EXPAND1 = {
    "conv": lambda cin, cout: with_bn(nn.Conv2d(cin, cout, 1), cout, True),
    "pointwise": lambda cin, cout: with_bn(nn.Conv2d(cin, cout, 1, bias=False), cout, True),
    "grouped": lambda cin, cout: GroupedPointwiseShuffle(cin, cout, groups=4, shuffle=False),
}
_EXPAND3 = {
    "conv3x3": lambda cin, cout, size: with_bn(conv3x3(cin, cout, bias=True), cout, True),
    "depthwise": lambda cin, cout, size: with_bn(depthwise3x3(cin, cout), cout, True),
    "ghost": lambda cin, cout, size: GhostModule(cin, cout, act=False),
    "ghost_grouped": lambda cin, cout, size: GhostModule(cin, cout, act=False, groups=4),
    "dice": lambda cin, cout, size: DiCE(cin, cout, height=size, width=size),
}


def _fire_shuffle(channels: int, groups: int) -> nn.Module | None:
    return ChannelInterleave.of_groups(channels, groups) if groups > 1 else None


def _fire(c: VGGColumn, cin: int, cout: int, size: int) -> nn.Module:
    squeeze = cout // 8
    return Fire(_SQUEEZE[c.squeeze](cin, squeeze), _EXPAND1[c.expand1x1](squeeze, cout // 2),
                _EXPAND3[c.expand3x3](squeeze, cout - cout // 2, size), shuffle=_fire_shuffle(cout, c.fire_shuffle))


_UNITS = {
    "conv3x3": lambda c, cin, cout, size: nn.Sequential(conv3x3(cin, cout, bias=True), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)),
    "factorised": lambda c, cin, cout, size: nn.Sequential(FactorisedConv(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)),
    "separable": lambda c, cin, cout, size: nn.Sequential(DepthwiseSeparableConv(cin, cout), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)),
    "fire": _fire,
}
_HEADS = {
    "mlp": lambda cin, n: [nn.Flatten(1), nn.Linear(cin, 4096), nn.ReLU(inplace=True), nn.Dropout(),
                           nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(), nn.Linear(4096, n)],
    "linear": lambda cin, n: [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, n)],
    "conv_bn": lambda cin, n: [nn.Conv2d(cin, n, 1), nn.BatchNorm2d(n), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)],
    "conv": lambda cin, n: [nn.Conv2d(cin, n, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)],
}


class CompressedVGG(nn.Module):
    """VGG-19's 16 conv units (each replaced per the column) -> head."""

    def __init__(self, column: VGGColumn, *, num_classes: int, in_channels: int = 3, input_size: int = 32) -> None:
        super().__init__()
        self.column = column
        # Only the baseline keeps the fifth pool (32 -> 1x1 for its MLP); the rest pool globally at 2x2.
        layout = VGG19 if column.head == "mlp" else VGG19[:-1]
        layers: list[nn.Module] = []
        cin, size = in_channels, input_size
        for width in layout:
            if width == "M":
                layers.append(nn.MaxPool2d(2, 2))
                size //= 2
                continue
            layers.append(_UNITS[column.unit](column, cin, width, size))
            if column.se:
                layers.append(SqueezeExcitation(width))
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(*_HEADS[column.head](cin, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def compressed_vgg19(col: int, *, num_classes: int = 10, in_channels: int = 3) -> CompressedVGG:
    """Column ``col`` (1-13) of the paper's VGG-19 table, for 32x32 input."""
    if col not in COLUMNS_BY_NUMBER:
        raise ValueError(f"VGG-19 columns are {sorted(COLUMNS_BY_NUMBER)}; got {col}")
    return CompressedVGG(COLUMNS_BY_NUMBER[col], num_classes=num_classes, in_channels=in_channels)


register_columns(COLUMNS, CompressedVGG, prefix="vgg19_c32_col", title="VGG-19")
