"""Small, explicit edits of torchvision networks (input channels, stem stride)."""

from __future__ import annotations

from torch import nn


def replace_conv(conv: nn.Conv2d, *, in_channels: int | None = None, kernel_size=None,
                 stride=None, padding=None) -> nn.Conv2d:
    """A freshly initialised copy of ``conv`` with some geometry changed."""
    return nn.Conv2d(
        in_channels or conv.in_channels,
        conv.out_channels,
        kernel_size=kernel_size or conv.kernel_size,
        stride=stride or conv.stride,
        padding=conv.padding if padding is None else padding,
        groups=conv.groups,
        bias=conv.bias is not None,
    )
