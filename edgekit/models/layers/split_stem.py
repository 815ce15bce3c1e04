"""Split-input stem: one branch per group of input channels, outputs concatenated on the channel axis.

Used by the RGB+D MobileNetV2 (docs/papers.md): the RGB stream and the depth stream
each run their own copy of the first layers. Contiguous groups are taken with ``x[:, start:stop]``
(ONNX Slice); only a non-contiguous group such as ``[0, 2]`` needs ``index_select`` (ONNX Gather).
Both export with opset 17 and run in ONNX Runtime and OpenVINO.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from edgekit.core.errors import EdgekitError

Partition = tuple[tuple[int, ...], ...]


def default_partition(in_channels: int) -> Partition:
    """RGB | depth for 4-channel input, otherwise one branch per channel."""
    if in_channels == 4:
        return ((0, 1, 2), (3,))
    return tuple((c,) for c in range(in_channels))


def validate_partition(partition: Sequence[Sequence[int]], in_channels: int) -> Partition:
    """``partition`` as a tuple of tuples, or a one-line EdgekitError saying what is wrong."""
    if isinstance(partition, (str, bytes)) or not isinstance(partition, Sequence):
        raise EdgekitError(f"partition must be a list of channel lists such as [[0, 1, 2], [3]], got {partition!r}")
    groups = []
    for group in partition:
        if isinstance(group, (str, bytes)) or not isinstance(group, Sequence) or not group:
            raise EdgekitError(f"partition {partition!r}: every branch needs a non-empty list of channels, got {group!r}")
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in group):
            raise EdgekitError(f"partition {partition!r}: channels must be integers, got {group!r}")
        groups.append(tuple(group))
    if len(groups) < 2:
        raise EdgekitError(f"partition {partition!r} has {len(groups)} branch; a split needs at least 2")
    flat = [c for group in groups for c in group]
    outside = sorted({c for c in flat if not 0 <= c < in_channels})
    if outside:
        raise EdgekitError(f"partition {partition!r}: channels {outside} are outside 0..{in_channels - 1} "
                           f"(in_channels={in_channels})")
    repeated = sorted({c for c in flat if flat.count(c) > 1})
    missing = sorted(set(range(in_channels)) - set(flat))
    if repeated or missing:
        raise EdgekitError(f"partition {partition!r} must use every channel 0..{in_channels - 1} exactly once: "
                           f"repeated {repeated}, missing {missing}")
    return tuple(groups)


def _contiguous(group: tuple[int, ...]) -> bool:
    return list(group) == list(range(group[0], group[0] + len(group)))


class SplitStem(nn.Module):
    """``cat([branch_i(x[:, group_i]) for i], dim=1)``.

    The partition is checked against ``in_channels`` by the caller (see ``validate_partition``); here
    only the number of branches must match it.
    """

    def __init__(self, partition: Sequence[Sequence[int]], branches: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(partition) != len(branches):
            raise ValueError(f"{len(partition)} channel groups but {len(branches)} branches")
        self.partition: Partition = tuple(tuple(group) for group in partition)
        self.branches = nn.ModuleList(branches)
        # (start, stop) for a contiguous group, None where an index buffer is used instead.
        self._ranges: list[tuple[int, int] | None] = []
        for i, group in enumerate(self.partition):
            if _contiguous(group):
                self._ranges.append((group[0], group[-1] + 1))
            else:
                self._ranges.append(None)
                # Not persistent: the partition is in the model's config, not its weights.
                self.register_buffer(f"index_{i}", torch.tensor(group, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = []
        for i, branch in enumerate(self.branches):
            bounds = self._ranges[i]
            if bounds is not None:
                part = x[:, bounds[0]:bounds[1]]
            else:
                part = x.index_select(1, getattr(self, f"index_{i}"))
            outputs.append(branch(part))
        return torch.cat(outputs, dim=1)

    def extra_repr(self) -> str:
        return f"partition={[list(g) for g in self.partition]}"
