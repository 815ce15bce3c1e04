"""The search space of the two-step search: a replication/split MobileNetV2 config and its neighbours.

Each step of :mod:`edgekit.search.two_step` turns a parent config into children: one more copy of
an eligible block (step 1), or a split of the input stem at a valid position (step 2). Configs
store the options sorted and without defaults, so equal layouts have equal configs.
"""

from __future__ import annotations

import dataclasses

from edgekit.core.errors import EdgekitError
from edgekit.models import ModelConfig
from edgekit.models.layers.split_stem import Partition
from edgekit.models.mobilenet_rs import (
    ReplicationSplitLayout,
    layout_of_config,
    resolve_layout,
)


def _config_with_layout(config: ModelConfig, layout: ReplicationSplitLayout) -> ModelConfig:
    """The config whose options describe ``layout``; default values are left out."""
    options = {}
    if layout.replications:
        options["replications"] = list(layout.replications)
    if layout.split_at:
        options.update(split_at=layout.split_at, partition=[list(g) for g in layout.partition], merge=layout.merge)
    return dataclasses.replace(config, options=options)


def eligible_blocks(config: ModelConfig) -> list[int]:
    """Original-numbering indices of the blocks ``with_replication`` accepts (replicated ones included)."""
    return [spec.index for spec in layout_of_config(config).layers if spec.replicable]


def with_replication(config: ModelConfig, index: int) -> ModelConfig:
    """``config`` with one more copy of block ``index`` (original numbering)."""
    layout = layout_of_config(config)
    new = resolve_layout(layout.layers, replications=[*layout.replications, index],
                         split_at=layout.split_at, partition=layout.partition or None, merge=layout.merge)
    return _config_with_layout(config, new)


def with_split(config: ModelConfig, split_at: int, partition: list[list[int]] | None = None,
               merge: str = "concat_half") -> ModelConfig:
    """``config`` split at ``split_at`` (0: no split); the partition is stored explicitly."""
    layout = layout_of_config(config)
    new = resolve_layout(layout.layers, replications=list(layout.replications), split_at=split_at,
                         partition=partition if split_at else None, merge=merge if split_at else "concat_half")
    return _config_with_layout(config, new)


def split_positions(config: ModelConfig) -> list[int]:
    """Valid k for ``config``'s partition (or the default one) and merge; [] when the input cannot be split."""
    layout = layout_of_config(config)
    partition = layout.partition or None
    positions = []
    for k in range(1, len(layout.layers)):
        try:
            resolve_layout(layout.layers, replications=list(layout.replications), split_at=k, partition=partition,
                           merge=layout.merge)
        except EdgekitError:
            continue
        positions.append(k)
    return positions


def _partition_label(partition: Partition, in_channels: int) -> str:
    names = {3: "rgb", 4: "rgbd"}.get(in_channels)
    if names:
        return "|".join("".join(names[c] for c in group) for group in partition)
    return "|".join("+".join(str(c) for c in group) for group in partition)


def describe(config: ModelConfig) -> str:
    """A short label such as ``"rep[5,5,12] split@3 rgb|d half"``; ``"vanilla"`` without options."""
    layout = layout_of_config(config)
    parts = []
    if layout.replications:
        parts.append("rep[" + ",".join(str(i) for i in layout.replications) + "]")
    if layout.split_at:
        merge = "half" if layout.merge == "concat_half" else "concat"
        parts.append(f"split@{layout.split_at} {_partition_label(layout.partition, config.in_channels)} {merge}")
    return " ".join(parts) or "vanilla"
