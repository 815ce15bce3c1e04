"""kEffNet: EfficientNet-B0 with every pointwise conv grouped and interleaved (Schwarz Schuler et al.).

The network is torchvision's EfficientNet-B0 (stem, depthwise convs, stochastic depth, Dropout +
Linear classifier all unchanged); :func:`group_pointwise_convs` walks it and swaps each 1x1 conv
(MBConv expand and project, squeeze-excitation fc1/fc2, the 320 -> 1280 top conv) for a
:class:`~edgekit.models.layers.grouped_pointwise_interleave.GroupedPointwiseInterleave` (2021) or
:class:`~edgekit.models.layers.grouped_pointwise_interleave.PaddedGroupedPointwiseInterleave` (2022) block.

Choices that reproduce the papers' parameter counts exactly (10 classes: 16ch 639,702,
32ch 1,059,202; 2022 16ch 623,226, 32ch 950,650), all taken from the authors' Keras code:

- A conv with a BatchNorm (expand, project, top) becomes grouped conv + BN (+ its activation) at
  every stage, convs without bias; every new conv gets its own BN (2 parameters per channel:
  the papers count Keras' trainable parameters, and BN running statistics are buffers here).
- The SE convs keep torchvision's (and Keras') form: bias, no BN, in every conv of the block,
  including the second grouped conv (SE reduce never expands, so it gets one whenever G > 1).
  Their SiLU and Sigmoid stay in torchvision's ``SqueezeExcitation``, applied to the block's
  output (Keras applies them inside the block, to each conv; the count is the same).
- The second grouped conv exists only where Cin >= F (projects, SE reduce), as in the papers.
- 2021: G is the largest common divisor of Cin and F not above Cin // ch; G <= 1 keeps the dense
  conv (e.g. the SE expands from 4..28 channels; only 48 -> 1152 at 16ch is grouped, G = 3).
- 2022: Cin is padded to ceil(Cin / ch) * ch by repeating channels, a remainder path takes
  F % G filters, and layers with Cin <= 2 * ch (Cin <= ch when expanding) stay dense.
Activations do not change the counts (the top conv keeps torchvision's SiLU, which the authors'
kEffNet drops); the stride-1 stem does not change them either.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn
from torchvision import models as tvm
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from edgekit.data.preprocessing import CIFAR10_MEAN, CIFAR10_STD
from edgekit.models._registry import register_model
from edgekit.models._surgery import replace_conv
from edgekit.models.layers.grouped_pointwise_interleave import (
    GroupedPointwiseInterleave,
    PaddedGroupedPointwiseInterleave,
)

_CIFAR = {"mean": CIFAR10_MEAN, "std": CIFAR10_STD, "num_classes": 10}

BlockFactory = Callable[..., nn.Module]


def _is_pointwise(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.groups == 1


def _replacement(child: nn.Module, parent: nn.Module, block: BlockFactory, channels_per_group: int) -> nn.Module | None:
    """The grouped block for ``child`` if it is one of the network's pointwise convs, else None."""
    if isinstance(child, Conv2dNormActivation) and _is_pointwise(child[0]):
        conv, norm = child[0], child[1]
        activation = type(child[2]) if len(child) > 2 else None
        return block(conv.in_channels, conv.out_channels, channels_per_group=channels_per_group,
                     norm_layer=lambda c: nn.BatchNorm2d(c, eps=norm.eps, momentum=norm.momentum),
                     activation_layer=activation, bias=False)
    if isinstance(parent, SqueezeExcitation) and _is_pointwise(child):
        # SE's activations belong to SqueezeExcitation.forward and stay there.
        return block(child.in_channels, child.out_channels, channels_per_group=channels_per_group,
                     norm_layer=None, activation_layer=None, bias=True)
    return None


def group_pointwise_convs(model: nn.Module, *, channels_per_group: int, block: BlockFactory = GroupedPointwiseInterleave) -> nn.Module:
    """Replace, in place, every pointwise conv of a torchvision EfficientNet by ``block``."""
    if channels_per_group < 1:
        raise ValueError(f"channels_per_group must be a positive integer, got {channels_per_group}")
    for parent in list(model.modules()):  # a snapshot: the new blocks are not visited
        for name, child in list(parent.named_children()):
            new = _replacement(child, parent, block, channels_per_group)
            if new is not None:
                setattr(parent, name, new)
    return model


def keffnet_b0(*, num_classes: int, in_channels: int = 3, channels_per_group: int = 16,
               version: int = 2021, stem_stride: int = 2) -> nn.Module:
    """EfficientNet-B0 with grouped, interleaved pointwise convs (``version`` 2021 or 2022)."""
    blocks = {2021: GroupedPointwiseInterleave, 2022: PaddedGroupedPointwiseInterleave}
    if version not in blocks:
        raise ValueError(f"kEffNet version must be 2021 or 2022, got {version!r}")
    model = tvm.efficientnet_b0(weights=None, num_classes=num_classes)
    stem = model.features[0][0]
    if in_channels != stem.in_channels or stem_stride != stem.stride[0]:
        model.features[0][0] = replace_conv(stem, in_channels=in_channels, stride=stem_stride)
    return group_pointwise_convs(model, channels_per_group=channels_per_group, block=blocks[version])


def _cifar(*, num_classes: int, in_channels: int, channels_per_group: int, version: int) -> nn.Module:
    # Stride-1 stem as efficientnet_b0_cifar: 32x32 input ends at 2x2, not 1x1.
    return keffnet_b0(num_classes=num_classes, in_channels=in_channels,
                      channels_per_group=channels_per_group, version=version, stem_stride=1)


@register_model("keffnet_b0_16ch", input_size=32, description="kEffNet-B0 (2021), 16 channels per group, 32x32 input (stride-1 stem)", **_CIFAR)
def keffnet_b0_16ch(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    return _cifar(num_classes=num_classes, in_channels=in_channels, channels_per_group=16, version=2021)


@register_model("keffnet_b0_32ch", input_size=32, description="kEffNet-B0 (2021), 32 channels per group, 32x32 input (stride-1 stem)", **_CIFAR)
def keffnet_b0_32ch(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    return _cifar(num_classes=num_classes, in_channels=in_channels, channels_per_group=32, version=2021)


@register_model("keffnet2_b0_16ch", input_size=32, description="kEffNet-B0 (2022, no divisibility constraints), 16 channels per group, 32x32 input", **_CIFAR)
def keffnet2_b0_16ch(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    return _cifar(num_classes=num_classes, in_channels=in_channels, channels_per_group=16, version=2022)


@register_model("keffnet2_b0_32ch", input_size=32, description="kEffNet-B0 (2022, no divisibility constraints), 32 channels per group, 32x32 input", **_CIFAR)
def keffnet2_b0_32ch(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    return _cifar(num_classes=num_classes, in_channels=in_channels, channels_per_group=32, version=2022)
