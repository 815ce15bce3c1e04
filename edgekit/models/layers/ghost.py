"""Ghost module and ghost bottleneck (Han et al., GhostNet) in the compression paper's form."""

from __future__ import annotations

import torch
from torch import nn

from edgekit.models.layers.grouped_pointwise_shuffle import GroupedPointwiseShuffle
from edgekit.models.layers.residual import Residual, projection
from edgekit.models.layers.separable import depthwise3x3
from edgekit.models.layers.squeeze_excitation import SqueezeExcitation


class GhostModule(nn.Module):
    """A 1x1 conv to half the output channels, a cheap depthwise 3x3 on those, both concatenated.

    ``groups > 1`` makes the 1x1 a grouped conv followed by a channel shuffle (inputs with
    ``ungrouped_upto`` channels or fewer stay dense). One BN covers the concatenation, then ReLU6.
    """

    def __init__(self, in_channels: int, out_channels: int, *, act: bool = True, groups: int = 1,
                 ungrouped_upto: int = 24) -> None:
        super().__init__()
        primary = (out_channels + 1) // 2
        # Odd widths: the depthwise conv makes one cheap channel too many, dropped in forward.
        self.cheap_channels = out_channels - primary if out_channels % 2 else None
        self.primary = GroupedPointwiseShuffle(in_channels, primary, groups=groups, ungrouped_upto=ungrouped_upto, bn=False)
        self.cheap = depthwise3x3(primary)
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = nn.ReLU6(inplace=True) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        primary = self.primary(x)
        cheap = self.cheap(primary)
        if self.cheap_channels is not None:
            cheap = cheap[:, : self.cheap_channels]
        return self.act(self.bn(torch.cat([primary, cheap], 1)))


def ghost_bottleneck(in_channels: int, hidden: int, out_channels: int, *, stride: int = 1, se: bool = False,
                     groups: int = 1, ungrouped_upto: int = 24) -> Residual:
    """Ghost module (expand, ReLU6) -> [depthwise 3x3 stride s + BN] -> [SE] -> ghost module (project).

    The shortcut is the identity, or a 1x1 conv + BN where the shape changes; no activation after
    the sum (the paper's "ghost block", a GhostNet bottleneck with a ResNet projection shortcut).
    """
    body: list[nn.Module] = [GhostModule(in_channels, hidden, groups=groups, ungrouped_upto=ungrouped_upto)]
    if stride > 1:
        body += [depthwise3x3(hidden, stride=stride), nn.BatchNorm2d(hidden)]
    if se:
        body.append(SqueezeExcitation(hidden))
    body.append(GhostModule(hidden, out_channels, act=False, groups=groups, ungrouped_upto=ungrouped_upto))
    return Residual(nn.Sequential(*body), projection(in_channels, out_channels, stride=stride))
