"""The channel shuffle of every edgekit model: a fixed-layout interleave that exports to plain ONNX.

ShuffleNet's channel shuffle of G groups and kEffNet's ``InterleaveChannels(step)`` are the same
permutation read two ways (G groups of ``C / G`` channels = rows of ``step = C / G``), so one module
does both. It is written as reshape/transpose with the channel layout fixed at construction
rather than read from ``x.shape``: with a dynamic batch axis a shape-read shuffle exports as
Shape/Gather/Concat chains per reshape, and ``torch.channel_shuffle`` or an index permutation as
a custom op or a Gather; this one exports as Reshape/Transpose/Reshape (plus Slice/Concat for a
short last row), which every runtime and int8 quantiser understands.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn


class ChannelInterleave(nn.Module):
    """Channel interleave (channel shuffle) that exports to ONNX as Reshape/Transpose/Reshape.

    Lays the ``channels`` out in rows of ``step`` (a grouped conv's outputs per group) and reads
    them column by column, so consecutive output channels come from different groups: channel
    ``g * step + j`` moves to ``j * rows + g``. This is Keras ``InterleaveChannels(step)`` and, when
    ``step`` divides ``channels``, torchvision's channel shuffle with ``channels // step`` groups
    (:meth:`of_groups`). Built from reshape/transpose with the channel layout fixed at construction
    (no index tensors), so the ONNX graph has no Gather/ScatterND. A traced export fixes the spatial
    size (the batch axis stays dynamic), as edgekit's fixed-resolution exports do anyway.
    """

    def __init__(self, channels: int, step: int) -> None:
        super().__init__()
        if not 1 <= step <= channels:
            raise ValueError(f"interleave step must be in [1, {channels}] for {channels} channels, got {step}")
        self.channels, self.step = channels, step
        self.rows, self.rest = divmod(channels, step)
        # The groups it interleaves: rows of ``step`` channels, the last one short where step does not divide.
        self.groups = math.ceil(channels / step)

    @classmethod
    def of_groups(cls, channels: int, groups: int) -> ChannelInterleave:
        """ShuffleNet's channel shuffle: ``groups`` equal groups of ``channels // groups``."""
        if groups < 1 or channels % groups:
            raise ValueError(f"channel shuffle needs channels divisible by groups; got {channels} channels, {groups} groups")
        return cls(channels, channels // groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with warnings.catch_warnings():
            # Under tracing the sizes below are traced values; reading them as Python ints bakes the
            # spatial size into the graph: edgekit exports a fixed resolution with a dynamic batch
            # axis, and constant Reshape targets (batch -1) keep the interleave plain
            # Reshape/Transpose/Reshape instead of Shape/Gather/Concat chains per reshape.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            channels, h, w = (int(size) for size in x.shape[1:])
        if channels != self.channels:
            # The batch axis is -1: a wrong width would silently fold into it instead of failing.
            raise ValueError(f"channel interleave built for {self.channels} channels, got {channels}")
        rows, step, rest = self.rows, self.step, self.rest
        if rest == 0:
            return x.reshape(-1, rows, step, h, w).transpose(1, 2).reshape(-1, self.channels, h, w)
        # A short last row (only the 2022 layout hits this, e.g. 112 channels in steps of 3):
        # its ``rest`` channels end the first ``rest`` columns. Slice/Reshape/Transpose/Concat.
        columns = x[:, :rows * step].reshape(-1, rows, step, h, w).transpose(1, 2)
        tail = x[:, rows * step:].reshape(-1, rest, 1, h, w)
        long_columns = torch.cat([columns[:, :rest], tail], dim=2).reshape(-1, rest * (rows + 1), h, w)
        return torch.cat([long_columns, columns[:, rest:].reshape(-1, (step - rest) * rows, h, w)], dim=1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, step={self.step}"


def interleave_channels(x: torch.Tensor, step: int) -> torch.Tensor:
    """Functional :class:`ChannelInterleave` (eager use; modules export more cleanly)."""
    return ChannelInterleave(x.shape[1], step)(x)
