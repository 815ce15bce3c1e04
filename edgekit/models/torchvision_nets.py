"""torchvision base networks and their CIFAR-style 32x32 adaptations used by the papers.

The 224-pixel builders are torchvision's own; users who can download may load ImageNet weights
with ``--weights`` (a state_dict file). The ``*_cifar`` variants follow the usual adaptation for
32x32 input: no early down-sampling in the stem, so the last feature map is not 1x1.
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from edgekit.data.preprocessing import CIFAR10_MEAN, CIFAR10_STD
from edgekit.models._registry import register_model
from edgekit.models._surgery import replace_conv

_CIFAR = {"mean": CIFAR10_MEAN, "std": CIFAR10_STD, "num_classes": 10}

# torchvision's MobileNetV2 table (t, c, n, s) with the 24-channel stage at stride 1, as in
# the common CIFAR adaptation: with a stride-1 stem too, 32x32 input ends at 4x4, not 1x1.
MOBILENET_V2_CIFAR_SETTING = [
    [1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2],
    [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
]


def _set_stem(container: nn.Sequential, *, in_channels: int, stride: int | None = None) -> None:
    """Replace the first conv of a ``Conv2dNormActivation`` stem."""
    stem_conv = container[0][0]
    if in_channels != stem_conv.in_channels or (stride and stride != stem_conv.stride[0]):
        container[0][0] = replace_conv(stem_conv, in_channels=in_channels, stride=stride)


@register_model("mobilenet_v2", input_size=224, resize=256, description="torchvision MobileNetV2 (ImageNet layout)")
def mobilenet_v2(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.mobilenet_v2(weights=None, num_classes=num_classes)
    _set_stem(model.features, in_channels=in_channels)
    return model


@register_model("mobilenet_v2_cifar", input_size=32, description="MobileNetV2 for 32x32 input (stride-1 stem and stage 2)", **_CIFAR)
def mobilenet_v2_cifar(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.MobileNetV2(num_classes=num_classes, inverted_residual_setting=MOBILENET_V2_CIFAR_SETTING)
    _set_stem(model.features, in_channels=in_channels, stride=1)
    return model


@register_model("efficientnet_b0", input_size=224, resize=256, description="torchvision EfficientNet-B0 (ImageNet layout)")
def efficientnet_b0(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.efficientnet_b0(weights=None, num_classes=num_classes)
    _set_stem(model.features, in_channels=in_channels)
    return model


@register_model("efficientnet_b0_cifar", input_size=32, description="EfficientNet-B0 for 32x32 input (stride-1 stem), as kEffNet's 32 px runs", **_CIFAR)
def efficientnet_b0_cifar(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.efficientnet_b0(weights=None, num_classes=num_classes)
    _set_stem(model.features, in_channels=in_channels, stride=1)
    return model


@register_model("resnet101", input_size=224, resize=256, description="torchvision ResNet-101 (ImageNet layout)")
def resnet101(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.resnet101(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.conv1 = replace_conv(model.conv1, in_channels=in_channels)
    return model


@register_model("resnet101_cifar", input_size=32, description="ResNet-101 for 32x32 input (3x3 stride-1 stem, no max-pool), the compression paper's baseline", **_CIFAR)
def resnet101_cifar(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.resnet101(weights=None, num_classes=num_classes)
    model.conv1 = replace_conv(model.conv1, in_channels=in_channels, kernel_size=3, stride=1, padding=1)
    model.maxpool = nn.Identity()
    return model


@register_model("vgg19", input_size=224, resize=256, description="torchvision VGG-19 (ImageNet layout)")
def vgg19(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.vgg19(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.features[0] = replace_conv(model.features[0], in_channels=in_channels)
    return model


@register_model("vgg19_bn_cifar", input_size=32, description="VGG-19-BN for 32x32 input, classifier 512-4096-4096-classes (the compression paper's baseline)", **_CIFAR)
def vgg19_bn_cifar(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    model = tvm.vgg19_bn(weights=None, num_classes=num_classes)
    if in_channels != 3:
        model.features[0] = replace_conv(model.features[0], in_channels=in_channels)
    # Five max-pools take 32x32 to 1x1, so the classifier sees 512 features, not 512*7*7.
    model.avgpool = nn.Identity()
    model.classifier = nn.Sequential(
        nn.Linear(512, 4096), nn.ReLU(inplace=True), nn.Dropout(),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
        nn.Linear(4096, num_classes),
    )
    return model
