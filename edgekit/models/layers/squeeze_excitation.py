"""Squeeze-and-excitation (Hu et al.): a per-channel gate from globally pooled features."""

from __future__ import annotations

import torch
from torch import nn


class SqueezeExcitation(nn.Module):
    """x * sigmoid(W2 relu(W1 avgpool(x))), hidden width ``int(channels * ratio)``.

    The two fully connected layers are bias-free 1x1 convs (the paper uses bias-free ``nn.Linear``:
    the same weights) so the block exports without Flatten/Reshape around the gate.
    """

    def __init__(self, channels: int, ratio: float = 0.25) -> None:
        super().__init__()
        hidden = max(1, int(channels * ratio))
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)
