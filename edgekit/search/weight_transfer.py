"""Weight transfer between replication/split MobileNetV2s: a search child starts from its parent.

A child differs from its parent by one more block copy or a split of the input stem. Every child
layer takes its tensors from the parent layer it stands for (the same vanilla layer and copy, or
the parent's last copy of it; a branch with the same input channels), and channels are mapped by
the vanilla channel each one stands for (``ReplicationSplitLayout.channel_maps``), so a child
computes what its parent computed wherever the layouts allow.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.mobilenetv2 import InvertedResidual

from edgekit.core.errors import EdgekitError
from edgekit.models.mobilenet_rs import LayerCopy, LayerSpec, ReplicationSplitLayout


def _vanilla_layer_table(features: nn.Sequential) -> tuple[LayerSpec, ...]:
    """The vanilla layer table read back from a built torchvision MobileNetV2's ``features``."""
    specs = []
    for i, module in enumerate(features):
        if isinstance(module, InvertedResidual):
            c_in, hidden = module.conv[0][0].in_channels, module.conv[-2].in_channels
            specs.append(LayerSpec(i, "block", c_in, module.out_channels, module.stride, hidden // c_in))
        else:
            conv = module[0]
            kind = "stem" if i == 0 else "head"
            specs.append(LayerSpec(i, kind, conv.in_channels, conv.out_channels, conv.stride[0]))
    return tuple(specs)


def _tensor_channel_spaces(spec: LayerSpec) -> dict[str, tuple[str, str | None]]:
    """Module path inside one layer -> channel space of dim 0 and dim 1 of its tensors.

    dim 1 is the input side of a full conv; None for depthwise convs and batch norms.
    """
    if spec.kind in ("stem", "head"):
        return {"0": ("out", "in"), "1": ("out", None)}
    if spec.expand == 1:  # depthwise first: its channels are the block's input channels
        return {"conv.0.0": ("in", None), "conv.0.1": ("in", None), "conv.1": ("out", "in"), "conv.2": ("out", None)}
    return {"conv.0.0": ("hid", "in"), "conv.0.1": ("hid", None), "conv.1.0": ("hid", None),
            "conv.1.1": ("hid", None), "conv.2": ("out", "hid"), "conv.3": ("out", None)}


def _map_channels(src: torch.Tensor, src_maps, dst_maps, shape) -> torch.Tensor | None:
    """Gather ``src`` onto the child's channels; None when a child channel has no counterpart.

    Rows (outputs, per-channel tensors) take the parent's first channel standing for the same vanilla
    channel. Columns (conv inputs) take the sum of the parent's copies of that channel divided by the
    child's number of copies: widening an input n-fold divides the weights by n, and merging n copies
    sums them, so the layer's response to equal copies is unchanged.
    """
    rows, cols = dst_maps
    if rows is not None:
        first: dict[int, int] = {}
        for p, j in enumerate(src_maps[0]):
            first.setdefault(j, p)
        if any(j not in first for j in rows):
            return None
        src = src.index_select(0, torch.tensor([first[j] for j in rows], dtype=torch.long))
    if cols is not None:
        parent, child = torch.tensor(src_maps[1]), torch.tensor(cols)
        match = (parent[:, None] == child[None, :]).to(src.dtype)
        if (match.sum(0) == 0).any():
            return None
        copies = (child[:, None] == child[None, :]).sum(0).to(src.dtype)
        src = torch.einsum("oi...,ic->oc...", src, match / copies)
    return src if tuple(src.shape) == tuple(shape) else None


def _layout_of_model(model: nn.Module) -> ReplicationSplitLayout:
    layout = getattr(model, "rs_layout", None)
    if isinstance(layout, ReplicationSplitLayout):
        return layout
    if isinstance(model, tvm.MobileNetV2):
        return ReplicationSplitLayout(_vanilla_layer_table(model.features))
    raise EdgekitError(f"transfer_weights needs MobileNetV2 models (mobilenet_v2*), got {type(model).__name__}")


def _parent_layer(parent: ReplicationSplitLayout, child: ReplicationSplitLayout, layer: LayerCopy) -> LayerCopy | None:
    """The parent module ``layer`` takes its weights from, or None.

    Same (index, copy) where the parent has it; a replica the parent lacks takes the parent's last
    copy of that block. A branched child layer takes the parent's shared layer, or the parent branch
    with the same input channels; a shared child layer that the parent only has in branches is fresh.
    """
    index = layer.spec.index
    spec = parent.layers[index]
    copy = min(layer.copy, parent.copies(index) - 1)
    parent_shared = not parent.split_at or index >= parent.split_at
    if parent_shared:
        return LayerCopy(spec, copy, None)
    if layer.branch is None:
        return None
    group = child.partition[layer.branch]
    for b, parent_group in enumerate(parent.partition):
        if parent_group == group:
            return LayerCopy(spec, copy, b)
    return None


def transfer_weights(parent: nn.Module, child: nn.Module) -> dict:
    """Initialise ``child`` from ``parent`` (both MobileNetV2 of the same base table); see the module docs.

    Returns tensor counts {"copied": exact copies, "sliced": channel-mapped, "fresh": left as built}.
    """
    p_layout, c_layout = _layout_of_model(parent), _layout_of_model(child)
    base = [(s.kind, s.out_ch, s.expand) + ((s.in_ch,) if s.kind != "stem" else ()) for s in c_layout.layers]
    if base != [(s.kind, s.out_ch, s.expand) + ((s.in_ch,) if s.kind != "stem" else ()) for s in p_layout.layers]:
        raise EdgekitError("transfer_weights: parent and child are built on different MobileNetV2 tables")
    p_state, c_state = parent.state_dict(), child.state_dict()
    counts = {"copied": 0, "sliced": 0, "fresh": 0}
    new: dict[str, torch.Tensor] = {}

    def put(key: str, value: torch.Tensor | None, how: str) -> None:
        if value is None:
            counts["fresh"] += 1
        else:
            new[key] = value.detach().clone()
            counts[how] += 1

    for layer in c_layout.layer_copies():
        src = _parent_layer(p_layout, c_layout, layer)
        c_maps = c_layout.channel_maps(layer)
        p_maps = p_layout.channel_maps(src) if src is not None else None
        spaces = _tensor_channel_spaces(layer.spec)
        c_prefix = c_layout.state_prefix(layer) + "."
        for key in [k for k in c_state if k.startswith(c_prefix)]:
            relative = key[len(c_prefix):]
            src_key = p_layout.state_prefix(src) + "." + relative if src is not None else None
            if src_key not in p_state:
                put(key, None, "fresh")
                continue
            value, module_path = p_state[src_key], relative.rpartition(".")[0]
            if value.ndim == 0:  # num_batches_tracked
                put(key, value, "copied")
                continue
            dims = spaces[module_path]
            dst = tuple(c_maps[d] if d else None for d in dims)
            srcm = tuple(p_maps[d] if d else None for d in dims)
            if dst == srcm and value.shape == c_state[key].shape:
                put(key, value, "copied")
            else:
                put(key, _map_channels(value, srcm, dst, c_state[key].shape), "sliced")
    for key in [k for k in c_state if not k.startswith("features.")]:
        same = key in p_state and p_state[key].shape == c_state[key].shape
        put(key, p_state[key] if same else None, "copied")
    child.load_state_dict({**c_state, **new})
    return counts
