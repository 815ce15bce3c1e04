"""ResNet-101 for 32x32 input, compressed column by column as in Sobolewski & Szyc.

"A study of architecture optimization techniques for convolutional neural networks" (DepCoS 2023)
and its follow-up (IJET 2024) shrink a CIFAR ResNet-101 (3x3 stride-1 stem, no max-pool) in steps.
Each step is a column of their table; ``resnet101_c32_colN`` is column N, and ``COLUMNS`` below is
that table as configuration rows (which techniques each column switches on). Columns are cumulative
where the paper's are: 4 -> 5 adds grouped 1x1 + shuffle, 6 -> 7 -> 8 -> 9 strip the head and stem,
10 -> 11 -> 13 shrink the ghost network, 12 and 14 add SE to 11 and 13.

Layouts (block widths, where the stride sits, which block is dropped before global pooling) follow
the authors' public code. Deliberate differences, none of which changes a parameter count:
the "no FC" heads end with BN, not BN + ReLU6 (clamped logits), and every bottleneck keeps its
ReLU after the 3x3 (column 5's code drops it after the depthwise conv). One that does: blocks whose
shape does not change get no projection shortcut and no extra depthwise conv, where the authors'
code builds a few such layers (some unused); counts here are 0.1-0.4% below their table for that.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from edgekit.models._columns import register_columns
from edgekit.models.layers.dice import DiCE, StridedDiCE
from edgekit.models.layers.fire import Fire
from edgekit.models.layers.ghost import ghost_bottleneck
from edgekit.models.layers.grouped_pointwise_shuffle import GroupedPointwiseShuffle
from edgekit.models.layers.inverted_residual import inverted_residual
from edgekit.models.layers.residual import Residual, projection
from edgekit.models.layers.separable import (
    DepthwiseSeparableConv,
    FactorisedConv,
    conv3x3,
    depthwise3x3,
)


@dataclass(frozen=True)
class Stage:
    """``blocks`` blocks to width ``out``; the first has stride ``stride`` (and width ``first_hidden``)."""

    blocks: int
    hidden: int
    out: int
    stride: int
    first_hidden: int | None = None


# torchvision's ResNet-101: bottleneck width x4 expansion.
BOTTLENECK = (Stage(3, 64, 256, 1), Stage(4, 128, 512, 2), Stage(23, 256, 1024, 2), Stage(3, 512, 2048, 2))
# The paper's inverted-residual network: thin (10-86 channel) outputs, 64-512 channel expansions.
# Its last block widens to 512 for the 512 -> 2048 conv that replaces the bottleneck output.
INVERTED = (Stage(2, 64, 10, 1), Stage(4, 128, 22, 2, 64), Stage(23, 256, 42, 2, 128),
            Stage(3, 512, 86, 2, 256), Stage(1, 512, 512, 1))
INVERTED_TRIMMED = INVERTED[:4]  # "optimisation before GAP": the 86 -> 512 block becomes a 1x1 conv
GHOST = (Stage(3, 64, 10, 1), Stage(4, 128, 22, 2, 64), Stage(23, 256, 42, 2, 128), Stage(3, 512, 86, 2, 512))
GHOST_TRIMMED = GHOST[:3] + (Stage(2, 512, 86, 2, 512),)
# Widths divisible by 4 (and 8 after the ghost split) so every 1x1 can be grouped in four.
GHOST_GROUPED = (Stage(3, 64, 16, 1), Stage(4, 128, 24, 2, 64), Stage(23, 256, 40, 2, 128), Stage(2, 512, 88, 2, 512))


@dataclass(frozen=True)
class ResNetColumn:
    """One column of the paper's ResNet-101 table: which techniques are on.

    block: what replaces torchvision's bottleneck: bottleneck | fire | inverted | ghost | dice.
    spatial: the bottleneck's 3x3 conv: conv3x3 | factorised (3x1 + 1x3) | depthwise.
    stem: conv3x3 | factorised | separable (depthwise 3x3 + 1x1); stem_width its output channels.
    groups: 1x1 convs grouped in ``groups`` with a channel shuffle (1: dense); inputs of
        ``ungrouped_upto`` channels or fewer stay dense.
    se: squeeze-excitation (ratio 0.25) in every block.
    head_widths: 1x1 conv + BN + ReLU6 layers between the last block and the classifier.
    classifier: linear | linear_nobias (GAP + FC) | conv (no FC: 1x1 conv to classes + BN, then GAP).
    """

    col: int
    summary: str
    block: str = "bottleneck"
    spatial: str = "conv3x3"
    stem: str = "conv3x3"
    stem_width: int = 64
    groups: int = 1
    ungrouped_upto: int = 24
    se: bool = False
    stages: tuple[Stage, ...] = BOTTLENECK
    head_widths: tuple[int, ...] = ()
    classifier: str = "linear"


_SEP = {"stem": "separable"}
COLUMNS = (
    ResNetColumn(1, "baseline: torchvision bottlenecks, 3x3 stem, FC"),
    ResNetColumn(2, "fire modules (squeeze 1x1 -> 1x1 | 3x3) replace the bottlenecks", block="fire"),
    ResNetColumn(3, "every 3x3 (stem, bottlenecks) factorised into 3x1 + 1x3", spatial="factorised", stem="factorised"),
    ResNetColumn(4, "depthwise 3x3 in the bottlenecks, depthwise-separable stem", spatial="depthwise", **_SEP),
    ResNetColumn(5, "column 4 + grouped 1x1 convs (4 groups above 24 inputs) with channel shuffle",
                 spatial="depthwise", groups=4, **_SEP),
    ResNetColumn(6, "inverted residual blocks (ReLU6, 10-86 channels), 1x1 to 2048 + FC",
                 block="inverted", stages=INVERTED, head_widths=(2048,), **_SEP),
    ResNetColumn(7, "column 6 without FC: 1x1 conv to classes + GAP",
                 block="inverted", stages=INVERTED, classifier="conv", **_SEP),
    ResNetColumn(8, "column 7 optimised before GAP: last block -> 1x1 conv 86 -> 512",
                 block="inverted", stages=INVERTED_TRIMMED, head_widths=(512,), classifier="conv", **_SEP),
    ResNetColumn(9, "column 8 with a reduced 10-channel stem",
                 block="inverted", stages=INVERTED_TRIMMED, head_widths=(512,), classifier="conv", stem_width=10, **_SEP),
    ResNetColumn(10, "ghost bottlenecks (ghost module + depthwise + ghost module), FC without bias",
                 block="ghost", stages=GHOST, classifier="linear_nobias", **_SEP),
    ResNetColumn(11, "column 10 small: 16-channel stem, one block less, no FC",
                 block="ghost", stages=GHOST_TRIMMED, classifier="conv", stem_width=16, **_SEP),
    ResNetColumn(12, "column 11 + squeeze-excitation (0.25)",
                 block="ghost", stages=GHOST_TRIMMED, classifier="conv", stem_width=16, se=True, **_SEP),
    ResNetColumn(13, "column 11 + grouped 1x1 (4 groups) + shuffle in the ghost modules; the smallest",
                 block="ghost", stages=GHOST_GROUPED, classifier="conv", stem_width=16, groups=4, ungrouped_upto=0, **_SEP),
    ResNetColumn(14, "column 13 + squeeze-excitation (0.25)",
                 block="ghost", stages=GHOST_GROUPED, classifier="conv", stem_width=16, groups=4, ungrouped_upto=0,
                 se=True, **_SEP),
    ResNetColumn(15, "DiCE units (dimension-wise convs) in column 10's layout (follow-up paper); 32x32 only",
                 block="dice", stages=GHOST, classifier="linear_nobias", **_SEP),
)
COLUMNS_BY_NUMBER = {c.col: c for c in COLUMNS}

_STEMS = {"conv3x3": conv3x3, "factorised": FactorisedConv, "separable": DepthwiseSeparableConv}
_SPATIAL = {
    "conv3x3": conv3x3,
    "factorised": FactorisedConv,
    "depthwise": lambda cin, cout, *, stride: depthwise3x3(cin, cout, stride=stride),
}


def _bottleneck(c: ResNetColumn, cin: int, hidden: int, cout: int, stride: int, size: int) -> nn.Module:
    pointwise = {"groups": c.groups, "ungrouped_upto": c.ungrouped_upto}
    body = nn.Sequential(
        GroupedPointwiseShuffle(cin, hidden, act=nn.ReLU, **pointwise),
        _SPATIAL[c.spatial](hidden, hidden, stride=stride), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
        GroupedPointwiseShuffle(hidden, cout, **pointwise),
    )
    return Residual(body, projection(cin, cout, stride=stride), nn.ReLU(inplace=True))


def _fire(c: ResNetColumn, cin: int, hidden: int, cout: int, stride: int, size: int) -> nn.Module:
    # As in the paper: no BN inside the fire module, biases everywhere, a biased projection shortcut.
    fire = Fire.squeezenet(cin, hidden, cout // 2, cout - cout // 2, stride=stride, bn=False, bias=True)
    return Residual(fire, projection(cin, cout, stride=stride, bias=True))


def _inverted(c: ResNetColumn, cin: int, hidden: int, cout: int, stride: int, size: int) -> nn.Module:
    return inverted_residual(cin, hidden, cout, stride=stride)


def _ghost(c: ResNetColumn, cin: int, hidden: int, cout: int, stride: int, size: int) -> nn.Module:
    return ghost_bottleneck(cin, hidden, cout, stride=stride, se=c.se, groups=c.groups, ungrouped_upto=c.ungrouped_upto)


def _dice(c: ResNetColumn, cin: int, hidden: int, cout: int, stride: int, size: int) -> nn.Module:
    unit = (StridedDiCE if stride > 1 else DiCE)(hidden, cout, height=size, width=size)
    body = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True), unit)
    return Residual(body, projection(cin, cout, stride=stride))


_BLOCKS = {"bottleneck": _bottleneck, "fire": _fire, "inverted": _inverted, "ghost": _ghost, "dice": _dice}
_CLASSIFIERS = {
    "linear": lambda cin, n: [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, n)],
    "linear_nobias": lambda cin, n: [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(cin, n, bias=False)],
    "conv": lambda cin, n: [nn.Conv2d(cin, n, 1, bias=False), nn.BatchNorm2d(n), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)],
}


class CompressedResNet(nn.Module):
    """stem -> stages of blocks -> head, all read off one ``ResNetColumn``."""

    def __init__(self, column: ResNetColumn, *, num_classes: int, in_channels: int = 3, input_size: int = 32) -> None:
        super().__init__()
        self.column = column
        self.stem = nn.Sequential(_STEMS[column.stem](in_channels, column.stem_width, stride=1),
                                  nn.BatchNorm2d(column.stem_width), nn.ReLU(inplace=True))
        cin, size, stages = column.stem_width, input_size, []
        for stage in column.stages:
            blocks = []
            for i in range(stage.blocks):
                stride = stage.stride if i == 0 else 1
                hidden = (stage.first_hidden or stage.hidden) if i == 0 else stage.hidden
                size //= stride
                blocks.append(_BLOCKS[column.block](column, cin, hidden, stage.out, stride, size))
                cin = stage.out
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        head: list[nn.Module] = []
        for width in column.head_widths:
            head += [nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6(inplace=True)]
            cin = width
        self.head = nn.Sequential(*head, *_CLASSIFIERS[column.classifier](cin, num_classes))
        _init_weights(self)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def compressed_resnet101(col: int, *, num_classes: int = 10, in_channels: int = 3) -> CompressedResNet:
    """Column ``col`` (1-15) of the paper's ResNet-101 table, for 32x32 input."""
    if col not in COLUMNS_BY_NUMBER:
        raise ValueError(f"ResNet-101 columns are {sorted(COLUMNS_BY_NUMBER)}; got {col}")
    return CompressedResNet(COLUMNS_BY_NUMBER[col], num_classes=num_classes, in_channels=in_channels)


register_columns(COLUMNS, CompressedResNet, prefix="resnet101_c32_col", title="ResNet-101")
