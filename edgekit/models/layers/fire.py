"""Fire module (Iandola et al., SqueezeNet): squeeze 1x1 -> expand 1x1 | expand 3x3, concatenated."""

from __future__ import annotations

import torch
from torch import nn


def with_bn(conv: nn.Module, channels: int, bn: bool) -> nn.Module:
    return nn.Sequential(conv, nn.BatchNorm2d(channels)) if bn else conv


class Fire(nn.Module):
    """``relu(shuffle(cat(expand1x1(s), expand3x3(s))))`` with ``s = squeeze(x)``.

    The three branches are modules so the compressed variants (depthwise, grouped + shuffle, ghost,
    DiCE expands) reuse the same wiring; ``squeeze`` brings its own activation. ``shuffle`` (e.g. a
    :class:`~edgekit.models.layers.channel_interleave.ChannelInterleave`) permutes the concatenation.
    ``Fire.squeezenet`` builds the original dense form.
    """

    def __init__(self, squeeze: nn.Module, expand1x1: nn.Module, expand3x3: nn.Module, *,
                 shuffle: nn.Module | None = None) -> None:
        super().__init__()
        self.squeeze = squeeze
        self.expand1x1 = expand1x1
        self.expand3x3 = expand3x3
        self.shuffle = nn.Identity() if shuffle is None else shuffle
        self.act = nn.ReLU(inplace=True)

    @classmethod
    def squeezenet(cls, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, *, stride: int = 1,
                   bn: bool = True, bias: bool = True) -> Fire:
        """Dense 1x1 squeeze (+ BN) + ReLU, dense 1x1 and 3x3 expands (+ BN); stride on the expands."""
        return cls(
            nn.Sequential(with_bn(nn.Conv2d(in_channels, squeeze, 1, bias=bias), squeeze, bn), nn.ReLU(inplace=True)),
            with_bn(nn.Conv2d(squeeze, expand1x1, 1, stride, bias=bias), expand1x1, bn),
            with_bn(nn.Conv2d(squeeze, expand3x3, 3, stride, 1, bias=bias), expand3x3, bn),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        return self.act(self.shuffle(torch.cat([self.expand1x1(s), self.expand3x3(s)], 1)))
