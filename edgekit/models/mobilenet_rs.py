"""MobileNetV2 with layer replication and a split-input stem (README.md, "The papers' networks").

Builder options (all optional and JSON-serialisable; with none the model is torchvision's
MobileNetV2, with the same parameters and the same state_dict keys as mobilenet_v2[_cifar]):

``replications: list[int]``
    Blocks to replicate. Each entry inserts one more copy of that block right after it (after the
    earlier copies of the same block). Only stride-1 blocks with in == out channels are eligible, so
    a copy is an identity-shaped residual block. Order does not matter; configs store them sorted.
``split_at: int | None``
    k: each branch of the input runs its own copy of ``features[0:k]``; the branch outputs are
    concatenated on the channel axis and ``features[k:]`` is shared. 0 or None: no split.
``partition: list[list[int]]``
    The input channels of each branch. Default: RGB | D for 4 channels, else one branch per channel.
``merge: "concat_half" | "concat"``
    ``concat_half`` (default): every channel count C of a branched layer is divided among the n
    branches so that the widths add up to C exactly (whole multiples of 8 where C allows at least 8
    per branch, else single channels; earlier branches take the remainder: 24 -> 16 + 8,
    16 over 3 branches -> 6 + 5 + 5). The concatenation then has the original width, ``features[k:]``
    is unchanged and the parameter count drops slightly. ``concat``: every branch is full width, so
    the first shared layer ``features[k]`` sees n x C channels and is rebuilt: its input conv is
    widened (for block 1, whose first conv is depthwise, the whole block is built at n x C), and it
    loses its residual connection since its input and output widths now differ.

Indices are always in the ORIGINAL (vanilla) numbering of ``features``: 0 is the stem, 1..17 the
inverted-residual blocks, 18 the final 1x1 conv. Replicas never shift it: the j-th copy of block i
is the module named ``"{i}_r{j}"``, and a replica of a block below k lives inside every branch.
State-dict keys follow the same names: ``features.5.*``, ``features.5_r1.*`` and, for a split model,
``features.split.branches.{b}.{i}.*`` for the branched layers. ``transfer_weights`` maps layers by
these (index, copy, branch) names and maps channels by which vanilla channel each one stands for.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from edgekit.data.preprocessing import CIFAR10_MEAN, CIFAR10_STD
from edgekit.errors import EdgekitError
from edgekit.models._registry import ModelConfig, register_model
from edgekit.models._surgery import replace_conv
from edgekit.models.layers.split_stem import Partition, SplitStem, default_partition, validate_partition
from edgekit.models.torchvision_nets import _MOBILENET_V2_CIFAR_SETTING

MERGES = ("concat_half", "concat")
OPTIONS = ("replications", "split_at", "partition", "merge")

# torchvision's ImageNet table (t, c, n, s); the CIFAR table lives with mobilenet_v2_cifar.
_IMAGENET_SETTING = [
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
    [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
]
# Registered name -> (inverted-residual table, stem stride).
_TABLES = {"mobilenet_v2_rs": (_IMAGENET_SETTING, 2), "mobilenet_v2_rs_cifar": (_MOBILENET_V2_CIFAR_SETTING, 1)}


@dataclass(frozen=True)
class LayerSpec:
    """One entry of vanilla ``features``."""

    index: int
    kind: str  # "stem", "block" or "head"
    in_ch: int
    out_ch: int
    stride: int = 1
    expand: int = 1

    @property
    def replicable(self) -> bool:
        return self.kind == "block" and self.stride == 1 and self.in_ch == self.out_ch


def _layer_specs(setting, *, in_channels: int, stem_stride: int) -> tuple[LayerSpec, ...]:
    """torchvision's MobileNetV2 construction loop at width 1.0 (no rounding needed)."""
    specs = [LayerSpec(0, "stem", in_channels, 32, stem_stride)]
    channels = 32
    for t, c, n, s in setting:
        for i in range(n):
            specs.append(LayerSpec(len(specs), "block", channels, c, s if i == 0 else 1, t))
            channels = c
    specs.append(LayerSpec(len(specs), "head", channels, 1280))
    return tuple(specs)


def _specs_from_features(features: nn.Sequential) -> tuple[LayerSpec, ...]:
    """The same table read back from a built vanilla torchvision MobileNetV2."""
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


def _share(channels: int, parts: int) -> list[int]:
    """Widths of ``parts`` half-width branches for a C-channel layer; they add up to C."""
    unit = 8 if channels % 8 == 0 and channels >= 8 * parts else 1
    units, extra = divmod(channels // unit, parts)
    return [(units + (b < extra)) * unit for b in range(parts)]


def _span(channels: int, parts: int, branch: int) -> range:
    widths = _share(channels, parts)
    start = sum(widths[:branch])
    return range(start, start + widths[branch])


@dataclass(frozen=True)
class Instance:
    """One module of the built network: vanilla layer, copy number (0 = the original), branch."""

    layer: LayerSpec
    copy: int = 0
    branch: int | None = None

    @property
    def name(self) -> str:
        return str(self.layer.index) if self.copy == 0 else f"{self.layer.index}_r{self.copy}"


@dataclass(frozen=True)
class Layout:
    """A resolved, validated set of options over a vanilla layer table."""

    layers: tuple[LayerSpec, ...]
    replications: tuple[int, ...] = ()
    split_at: int = 0
    partition: Partition = ()
    merge: str = "concat_half"

    @property
    def branches(self) -> int:
        return len(self.partition) if self.split_at else 0

    def copies(self, index: int) -> int:
        return 1 + self.replications.count(index)

    def instances(self) -> list[Instance]:
        """Branch 0's layers, branch 1's ..., then the shared layers, each in forward order."""
        def run(layers, branch):
            return [Instance(spec, copy, branch) for spec in layers for copy in range(self.copies(spec.index))]

        k = self.split_at
        branched = [inst for b in range(self.branches) for inst in run(self.layers[:k], b)]
        return branched + run(self.layers[k:], None)

    def prefix(self, inst: Instance) -> str:
        if inst.branch is None:
            return f"features.{inst.name}"
        return f"features.split.branches.{inst.branch}.{inst.name}"

    def widened(self, inst: Instance) -> bool:
        return self.merge == "concat" and inst.branch is None and self.split_at > 0 and inst.layer.index == self.split_at

    def channel_maps(self, inst: Instance) -> dict[str, tuple[int, ...]]:
        """For the "in", "hid" and "out" channels of ``inst``: the vanilla channel each one stands for."""
        spec, b = inst.layer, inst.branch
        t = spec.expand if spec.kind == "block" else 1
        if b is None:
            c_in = tuple(range(spec.in_ch)) * (self.branches if self.widened(inst) else 1)
            hid = c_in if t == 1 else tuple(range(spec.in_ch * t))
            return {"in": c_in, "hid": hid, "out": tuple(range(spec.out_ch))}
        if self.merge == "concat":
            c_in = self.partition[b] if spec.kind == "stem" else tuple(range(spec.in_ch))
            return {"in": c_in, "hid": tuple(range(spec.in_ch * t)), "out": tuple(range(spec.out_ch))}
        span = _span(spec.in_ch, self.branches, b)
        c_in = self.partition[b] if spec.kind == "stem" else tuple(span)
        return {"in": c_in, "hid": tuple(range(span.start * t, span.stop * t)),
                "out": tuple(_span(spec.out_ch, self.branches, b))}

    def build(self, inst: Instance) -> nn.Module:
        spec, maps = inst.layer, self.channel_maps(inst)
        c_in, c_out = len(maps["in"]), len(maps["out"])
        if spec.kind == "stem":
            return Conv2dNormActivation(c_in, c_out, stride=spec.stride, activation_layer=nn.ReLU6)
        if spec.kind == "head":
            return Conv2dNormActivation(c_in, c_out, kernel_size=1, activation_layer=nn.ReLU6)
        if self.widened(inst) and spec.expand != 1:
            # Widen only the expanding 1x1 conv; the hidden width stays that of the vanilla block.
            block = InvertedResidual(spec.in_ch, c_out, spec.stride, expand_ratio=spec.expand)
            block.conv[0][0] = nn.Conv2d(c_in, len(maps["hid"]), 1, bias=False)
            block.use_res_connect = False  # n*C in, C out: no identity to add
            return block
        return InvertedResidual(c_in, c_out, spec.stride, expand_ratio=spec.expand)


def _resolve(layers: tuple[LayerSpec, ...], *, replications=None, split_at=None, partition=None,
             merge: str = "concat_half") -> Layout:
    """Validate builder options against a vanilla layer table; one-line EdgekitError on the first problem."""
    eligible = [spec.index for spec in layers if spec.replicable]
    if replications is None:
        replications = []
    if not isinstance(replications, (list, tuple)):
        raise EdgekitError(f"replications must be a list of block indices, got {replications!r}")
    for index in replications:
        if isinstance(index, bool) or not isinstance(index, int) or index not in eligible:
            raise EdgekitError(
                f"replications: block {index!r} cannot be replicated (needs a stride-1 inverted-residual block "
                f"with equal in/out channels); eligible blocks (original numbering): {eligible}")
    if merge not in MERGES:
        raise EdgekitError(f"merge must be one of {list(MERGES)}, got {merge!r}")
    if not split_at:
        if partition is not None or merge != "concat_half":
            raise EdgekitError(f"partition/merge given without split_at (got partition={partition!r}, "
                               f"merge={merge!r}); set split_at to 1..{len(layers) - 1}")
        return Layout(layers, tuple(sorted(replications)))
    if isinstance(split_at, bool) or not isinstance(split_at, int) or not 1 <= split_at < len(layers):
        raise EdgekitError(f"split_at must be 0 (no split) or 1..{len(layers) - 1}, got {split_at!r}")
    in_channels = layers[0].in_ch
    groups = validate_partition(default_partition(in_channels) if partition is None else partition, in_channels)
    if merge == "concat_half":
        narrow = [spec.index for spec in layers[:split_at] if spec.out_ch < len(groups)]
        if narrow:
            raise EdgekitError(f"split_at={split_at} with {len(groups)} half-width branches: layer {narrow[0]} has "
                               f"only {layers[narrow[0]].out_ch} channels to share; use merge='concat' or fewer branches")
    return Layout(layers, tuple(sorted(replications)), split_at, groups, merge)


def _init_like_torchvision(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class MobileNetV2RS(tvm.MobileNetV2):
    """torchvision's MobileNetV2 with ``features`` rebuilt from a ``Layout``; forward is inherited."""

    def __init__(self, layout: Layout, *, num_classes: int, setting) -> None:
        super().__init__(num_classes=num_classes, inverted_residual_setting=setting)
        self.rs_layout = layout
        vanilla = list(self.features)
        stem_spec = layout.layers[0]
        if stem_spec.in_ch != 3 or stem_spec.stride != 2:
            # As _set_stem does for mobilenet_v2_cifar: the vanilla model is the same either way.
            vanilla[0][0] = replace_conv(vanilla[0][0], in_channels=stem_spec.in_ch, stride=stem_spec.stride)
        shared: OrderedDict[str, nn.Module] = OrderedDict()
        branches = [OrderedDict() for _ in range(layout.branches)]
        for inst in layout.instances():
            if inst.branch is None and inst.copy == 0 and not layout.widened(inst):
                module = vanilla[inst.layer.index]
            else:
                module = layout.build(inst)
                _init_like_torchvision(module)
            (shared if inst.branch is None else branches[inst.branch])[inst.name] = module
        if branches:
            split = SplitStem(layout.partition, [nn.Sequential(branch) for branch in branches])
            shared = OrderedDict([("split", split), *shared.items()])
        self.features = nn.Sequential(shared)


def _build(name: str, *, num_classes: int, in_channels: int, **options) -> MobileNetV2RS:
    setting, stem_stride = _TABLES[name]
    layers = _layer_specs(setting, in_channels=in_channels, stem_stride=stem_stride)
    return MobileNetV2RS(_resolve(layers, **options), num_classes=num_classes, setting=setting)


@register_model("mobilenet_v2_rs", input_size=224, resize=256,
                description="MobileNetV2 (ImageNet layout) with layer replication and a split-input stem")
def mobilenet_v2_rs(*, num_classes: int, in_channels: int = 3, replications: list[int] | None = None,
                    split_at: int | None = None, partition: list[list[int]] | None = None,
                    merge: str = "concat_half") -> nn.Module:
    return _build("mobilenet_v2_rs", num_classes=num_classes, in_channels=in_channels, replications=replications,
                  split_at=split_at, partition=partition, merge=merge)


@register_model("mobilenet_v2_rs_cifar", input_size=32, mean=CIFAR10_MEAN, std=CIFAR10_STD, num_classes=10,
                description="mobilenet_v2_cifar with layer replication and a split-input stem")
def mobilenet_v2_rs_cifar(*, num_classes: int, in_channels: int = 3, replications: list[int] | None = None,
                          split_at: int | None = None, partition: list[list[int]] | None = None,
                          merge: str = "concat_half") -> nn.Module:
    return _build("mobilenet_v2_rs_cifar", num_classes=num_classes, in_channels=in_channels,
                  replications=replications, split_at=split_at, partition=partition, merge=merge)


# ---- config helpers for the architecture search -------------------------------------------------

def _config_layout(config: ModelConfig) -> Layout:
    if config.name not in _TABLES:
        twin = {"mobilenet_v2": "mobilenet_v2_rs", "mobilenet_v2_cifar": "mobilenet_v2_rs_cifar"}.get(config.name)
        hint = f" (use {twin}: same state_dict keys, so its weights load as they are)" if twin else ""
        raise EdgekitError(f"model {config.name!r} is not a replication/split MobileNetV2; "
                           f"expected one of {sorted(_TABLES)}{hint}")
    unknown = sorted(set(config.options) - set(OPTIONS))
    if unknown:
        raise EdgekitError(f"model {config.name!r} does not take options {unknown}; it takes {list(OPTIONS)}")
    setting, stem_stride = _TABLES[config.name]
    layers = _layer_specs(setting, in_channels=config.in_channels, stem_stride=stem_stride)
    return _resolve(layers, **config.options)


def _with_layout(config: ModelConfig, layout: Layout) -> ModelConfig:
    """The config whose options describe ``layout``; default values are left out."""
    options = {}
    if layout.replications:
        options["replications"] = list(layout.replications)
    if layout.split_at:
        options.update(split_at=layout.split_at, partition=[list(g) for g in layout.partition], merge=layout.merge)
    return dataclasses.replace(config, options=options)


def eligible_blocks(config: ModelConfig) -> list[int]:
    """Original-numbering indices of the blocks ``with_replication`` accepts (replicated ones included)."""
    return [spec.index for spec in _config_layout(config).layers if spec.replicable]


def with_replication(config: ModelConfig, index: int) -> ModelConfig:
    """``config`` with one more copy of block ``index`` (original numbering)."""
    layout = _config_layout(config)
    new = _resolve(layout.layers, replications=[*layout.replications, index],
                   split_at=layout.split_at, partition=layout.partition or None, merge=layout.merge)
    return _with_layout(config, new)


def with_split(config: ModelConfig, split_at: int, partition: list[list[int]] | None = None,
               merge: str = "concat_half") -> ModelConfig:
    """``config`` split at ``split_at`` (0: no split); the partition is stored explicitly."""
    layout = _config_layout(config)
    new = _resolve(layout.layers, replications=list(layout.replications), split_at=split_at,
                   partition=partition if split_at else None, merge=merge if split_at else "concat_half")
    return _with_layout(config, new)


def split_positions(config: ModelConfig) -> list[int]:
    """Valid k for ``config``'s partition (or the default one) and merge; [] when the input cannot be split."""
    layout = _config_layout(config)
    partition = layout.partition or None
    positions = []
    for k in range(1, len(layout.layers)):
        try:
            _resolve(layout.layers, replications=list(layout.replications), split_at=k, partition=partition,
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
    layout = _config_layout(config)
    parts = []
    if layout.replications:
        parts.append("rep[" + ",".join(str(i) for i in layout.replications) + "]")
    if layout.split_at:
        merge = "half" if layout.merge == "concat_half" else "concat"
        parts.append(f"split@{layout.split_at} {_partition_label(layout.partition, config.in_channels)} {merge}")
    return " ".join(parts) or "vanilla"


# ---- weight transfer ---------------------------------------------------------------------------

def _tensor_roles(spec: LayerSpec) -> dict[str, tuple[str, str | None]]:
    """Module path inside one layer -> channel space of dim 0 and dim 1 of its tensors.

    dim 1 is the input side of a full conv; None for depthwise convs and batch norms.
    """
    if spec.kind in ("stem", "head"):
        return {"0": ("out", "in"), "1": ("out", None)}
    if spec.expand == 1:  # depthwise first: its channels are the block's input channels
        return {"conv.0.0": ("in", None), "conv.0.1": ("in", None), "conv.1": ("out", "in"), "conv.2": ("out", None)}
    return {"conv.0.0": ("hid", "in"), "conv.0.1": ("hid", None), "conv.1.0": ("hid", None),
            "conv.1.1": ("hid", None), "conv.2": ("out", "hid"), "conv.3": ("out", None)}


def _remap(src: torch.Tensor, src_maps, dst_maps, shape) -> torch.Tensor | None:
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


def _layout_of(model: nn.Module) -> Layout:
    layout = getattr(model, "rs_layout", None)
    if isinstance(layout, Layout):
        return layout
    if isinstance(model, tvm.MobileNetV2):
        return Layout(_specs_from_features(model.features))
    raise EdgekitError(f"transfer_weights needs MobileNetV2 models (mobilenet_v2*), got {type(model).__name__}")


def _source(parent: Layout, child: Layout, inst: Instance) -> Instance | None:
    """The parent module ``inst`` takes its weights from, or None.

    Same (index, copy) where the parent has it; a replica the parent lacks takes the parent's last
    copy of that block. A branched child layer takes the parent's shared layer, or the parent branch
    with the same input channels; a shared child layer that the parent only has in branches is fresh.
    """
    index = inst.layer.index
    spec = parent.layers[index]
    copy = min(inst.copy, parent.copies(index) - 1)
    parent_shared = not parent.split_at or index >= parent.split_at
    if parent_shared:
        return Instance(spec, copy, None)
    if inst.branch is None:
        return None
    group = child.partition[inst.branch]
    for b, parent_group in enumerate(parent.partition):
        if parent_group == group:
            return Instance(spec, copy, b)
    return None


def transfer_weights(parent: nn.Module, child: nn.Module) -> dict:
    """Initialise ``child`` from ``parent`` (both MobileNetV2 of the same base table); see module docs.

    Returns tensor counts {"copied": exact copies, "sliced": channel-mapped, "fresh": left as built}.
    """
    p_layout, c_layout = _layout_of(parent), _layout_of(child)
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

    for inst in c_layout.instances():
        src = _source(p_layout, c_layout, inst)
        c_maps = c_layout.channel_maps(inst)
        p_maps = p_layout.channel_maps(src) if src is not None else None
        roles = _tensor_roles(inst.layer)
        c_prefix = c_layout.prefix(inst) + "."
        for key in [k for k in c_state if k.startswith(c_prefix)]:
            relative = key[len(c_prefix):]
            src_key = p_layout.prefix(src) + "." + relative if src is not None else None
            if src_key not in p_state:
                put(key, None, "fresh")
                continue
            value, module_path = p_state[src_key], relative.rpartition(".")[0]
            if value.ndim == 0:  # num_batches_tracked
                put(key, value, "copied")
                continue
            dims = roles[module_path]
            dst = tuple(c_maps[d] if d else None for d in dims)
            srcm = tuple(p_maps[d] if d else None for d in dims)
            if dst == srcm and value.shape == c_state[key].shape:
                put(key, value, "copied")
            else:
                put(key, _remap(value, srcm, dst, c_state[key].shape), "sliced")
    for key in [k for k in c_state if not k.startswith("features.")]:
        same = key in p_state and p_state[key].shape == c_state[key].shape
        put(key, p_state[key] if same else None, "copied")
    child.load_state_dict({**c_state, **new})
    return counts
