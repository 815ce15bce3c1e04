"""Tiny registered models: every pipeline path runs on them in seconds (tests, the offline demo)."""

from __future__ import annotations

from torch import nn

from edgekit.models._registry import register_model


def _conv_bn_relu(cin: int, cout: int, stride: int = 1, groups: int = 1, *, batchnorm: bool = True) -> list[nn.Module]:
    norm = nn.BatchNorm2d(cout) if batchnorm else nn.Identity()
    return [nn.Conv2d(cin, cout, 3, stride, 1, groups=groups, bias=not batchnorm), norm, nn.ReLU(inplace=True)]


class TinyCNN(nn.Module):
    """Three conv stages and a linear head; ``width`` scales every stage.

    ``batchnorm=False`` exists for the DDP equivalence test: BatchNorm statistics are per process
    under DDP on CPU (SyncBatchNorm is GPU-only), so only a network without it can match exactly.
    """

    def __init__(self, *, num_classes: int, in_channels: int, width: int, batchnorm: bool = True) -> None:
        super().__init__()
        bn = {"batchnorm": batchnorm}
        self.features = nn.Sequential(
            *_conv_bn_relu(in_channels, width, **bn),
            *_conv_bn_relu(width, 2 * width, stride=2, **bn),
            *_conv_bn_relu(2 * width, 2 * width, groups=2 * width, **bn),  # depthwise: per-channel quant matters
            nn.Conv2d(2 * width, 4 * width, 1, bias=not batchnorm),
            nn.BatchNorm2d(4 * width) if batchnorm else nn.Identity(), nn.ReLU(inplace=True),
            *_conv_bn_relu(4 * width, 4 * width, stride=2, **bn),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


@register_model("tiny_cnn", input_size=32, num_classes=10, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                description="5-conv test network (~45k params) for tests and quick checks")
def tiny_cnn(*, num_classes: int, in_channels: int = 3, batchnorm: bool = True) -> nn.Module:
    return TinyCNN(num_classes=num_classes, in_channels=in_channels, width=16, batchnorm=batchnorm)


@register_model("small_cnn", input_size=32, num_classes=10, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                description="the same network at 4x width (~0.4M params), big enough for int8 to pay off")
def small_cnn(*, num_classes: int, in_channels: int = 3) -> nn.Module:
    return TinyCNN(num_classes=num_classes, in_channels=in_channels, width=64)
