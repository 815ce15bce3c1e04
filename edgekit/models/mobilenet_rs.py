"""MobileNetV2 with layer replication and a split-input stem (docs/papers.md).

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
``features.split.branches.{b}.{i}.*`` for the branched layers. The search's weight transfer
(:mod:`edgekit.search.weight_transfer`) maps layers by these (index, copy, branch) names and maps
channels by which vanilla channel each one stands for (:meth:`ReplicationSplitLayout.channel_maps`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from torch import nn
from torchvision import models as tvm
from torchvision.models.mobilenetv2 import InvertedResidual
from torchvision.ops.misc import Conv2dNormActivation

from edgekit.core.errors import EdgekitError
from edgekit.data.preprocessing import CIFAR10_MEAN, CIFAR10_STD
from edgekit.models._registry import ModelConfig, register_model
from edgekit.models._surgery import replace_conv
from edgekit.models.layers.split_stem import (
    Partition,
    SplitStem,
    default_partition,
    validate_partition,
)
from edgekit.models.torchvision_nets import MOBILENET_V2_CIFAR_SETTING

MERGES = ("concat_half", "concat")
OPTIONS = ("replications", "split_at", "partition", "merge")

# torchvision's ImageNet table (t, c, n, s); the CIFAR table lives with mobilenet_v2_cifar.
_IMAGENET_SETTING = [
    [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2],
    [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
]
# Registered name -> (inverted-residual table, stem stride).
_TABLES = {"mobilenet_v2_rs": (_IMAGENET_SETTING, 2), "mobilenet_v2_rs_cifar": (MOBILENET_V2_CIFAR_SETTING, 1)}


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


def vanilla_layer_table(setting, *, in_channels: int, stem_stride: int) -> tuple[LayerSpec, ...]:
    """torchvision's MobileNetV2 construction loop at width 1.0 (no rounding needed)."""
    specs = [LayerSpec(0, "stem", in_channels, 32, stem_stride)]
    channels = 32
    for t, c, n, s in setting:
        for i in range(n):
            specs.append(LayerSpec(len(specs), "block", channels, c, s if i == 0 else 1, t))
            channels = c
    specs.append(LayerSpec(len(specs), "head", channels, 1280))
    return tuple(specs)


def branch_widths(channels: int, branches: int) -> list[int]:
    """Widths of ``branches`` half-width branches for a C-channel layer; they add up to C."""
    unit = 8 if channels % 8 == 0 and channels >= 8 * branches else 1
    units, extra = divmod(channels // unit, branches)
    return [(units + (b < extra)) * unit for b in range(branches)]


def branch_channels(channels: int, branches: int, branch: int) -> range:
    """The vanilla channels of a C-channel layer that half-width branch ``branch`` carries."""
    widths = branch_widths(channels, branches)
    start = sum(widths[:branch])
    return range(start, start + widths[branch])


@dataclass(frozen=True)
class LayerCopy:
    """One module of the built network: a copy (0 = the original) of a vanilla layer, in a branch or shared."""

    spec: LayerSpec
    copy: int = 0
    branch: int | None = None

    @property
    def name(self) -> str:
        return str(self.spec.index) if self.copy == 0 else f"{self.spec.index}_r{self.copy}"


@dataclass(frozen=True)
class ReplicationSplitLayout:
    """A resolved, validated set of replication/split options over a vanilla layer table."""

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

    def layer_copies(self) -> list[LayerCopy]:
        """Branch 0's layers, branch 1's ..., then the shared layers, each in forward order."""
        def run(layers, branch):
            return [LayerCopy(spec, copy, branch) for spec in layers for copy in range(self.copies(spec.index))]

        k = self.split_at
        branched = [layer for b in range(self.branches) for layer in run(self.layers[:k], b)]
        return branched + run(self.layers[k:], None)

    def state_prefix(self, layer: LayerCopy) -> str:
        """Where ``layer``'s tensors are in the model's state_dict (without the trailing dot)."""
        if layer.branch is None:
            return f"features.{layer.name}"
        return f"features.split.branches.{layer.branch}.{layer.name}"

    def widened(self, layer: LayerCopy) -> bool:
        return self.merge == "concat" and layer.branch is None and self.split_at > 0 and layer.spec.index == self.split_at

    def channel_maps(self, layer: LayerCopy) -> dict[str, tuple[int, ...]]:
        """For the "in", "hid" and "out" channels of ``layer``: the vanilla channel each one stands for."""
        spec, b = layer.spec, layer.branch
        t = spec.expand if spec.kind == "block" else 1
        if b is None:
            c_in = tuple(range(spec.in_ch)) * (self.branches if self.widened(layer) else 1)
            hid = c_in if t == 1 else tuple(range(spec.in_ch * t))
            return {"in": c_in, "hid": hid, "out": tuple(range(spec.out_ch))}
        if self.merge == "concat":
            c_in = self.partition[b] if spec.kind == "stem" else tuple(range(spec.in_ch))
            return {"in": c_in, "hid": tuple(range(spec.in_ch * t)), "out": tuple(range(spec.out_ch))}
        span = branch_channels(spec.in_ch, self.branches, b)
        c_in = self.partition[b] if spec.kind == "stem" else tuple(span)
        return {"in": c_in, "hid": tuple(range(span.start * t, span.stop * t)),
                "out": tuple(branch_channels(spec.out_ch, self.branches, b))}

    def build_layer(self, layer: LayerCopy) -> nn.Module:
        spec, maps = layer.spec, self.channel_maps(layer)
        c_in, c_out = len(maps["in"]), len(maps["out"])
        if spec.kind == "stem":
            return Conv2dNormActivation(c_in, c_out, stride=spec.stride, activation_layer=nn.ReLU6)
        if spec.kind == "head":
            return Conv2dNormActivation(c_in, c_out, kernel_size=1, activation_layer=nn.ReLU6)
        if self.widened(layer) and spec.expand != 1:
            # Widen only the expanding 1x1 conv; the hidden width stays that of the vanilla block.
            block = InvertedResidual(spec.in_ch, c_out, spec.stride, expand_ratio=spec.expand)
            block.conv[0][0] = nn.Conv2d(c_in, len(maps["hid"]), 1, bias=False)
            block.use_res_connect = False  # n*C in, C out: no identity to add
            return block
        return InvertedResidual(c_in, c_out, spec.stride, expand_ratio=spec.expand)


def resolve_layout(layers: tuple[LayerSpec, ...], *, replications=None, split_at=None, partition=None,
                   merge: str = "concat_half") -> ReplicationSplitLayout:
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
        return ReplicationSplitLayout(layers, tuple(sorted(replications)))
    if isinstance(split_at, bool) or not isinstance(split_at, int) or not 1 <= split_at < len(layers):
        raise EdgekitError(f"split_at must be 0 (no split) or 1..{len(layers) - 1}, got {split_at!r}")
    in_channels = layers[0].in_ch
    groups = validate_partition(default_partition(in_channels) if partition is None else partition, in_channels)
    if merge == "concat_half":
        narrow = [spec.index for spec in layers[:split_at] if spec.out_ch < len(groups)]
        if narrow:
            raise EdgekitError(f"split_at={split_at} with {len(groups)} half-width branches: layer {narrow[0]} has "
                               f"only {layers[narrow[0]].out_ch} channels to share; use merge='concat' or fewer branches")
    return ReplicationSplitLayout(layers, tuple(sorted(replications)), split_at, groups, merge)


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
    """torchvision's MobileNetV2 with ``features`` rebuilt from a ``ReplicationSplitLayout``; forward is inherited."""

    def __init__(self, layout: ReplicationSplitLayout, *, num_classes: int, setting) -> None:
        super().__init__(num_classes=num_classes, inverted_residual_setting=setting)
        self.rs_layout = layout
        vanilla = list(self.features)
        stem_spec = layout.layers[0]
        if stem_spec.in_ch != 3 or stem_spec.stride != 2:
            # As _set_stem does for mobilenet_v2_cifar: the vanilla model is the same either way.
            vanilla[0][0] = replace_conv(vanilla[0][0], in_channels=stem_spec.in_ch, stride=stem_spec.stride)
        shared: OrderedDict[str, nn.Module] = OrderedDict()
        branches = [OrderedDict() for _ in range(layout.branches)]
        for layer in layout.layer_copies():
            if layer.branch is None and layer.copy == 0 and not layout.widened(layer):
                module = vanilla[layer.spec.index]
            else:
                module = layout.build_layer(layer)
                _init_like_torchvision(module)
            (shared if layer.branch is None else branches[layer.branch])[layer.name] = module
        if branches:
            split = SplitStem(layout.partition, [nn.Sequential(branch) for branch in branches])
            shared = OrderedDict([("split", split), *shared.items()])
        self.features = nn.Sequential(shared)


def _build(name: str, *, num_classes: int, in_channels: int, **options) -> MobileNetV2RS:
    setting, stem_stride = _TABLES[name]
    layers = vanilla_layer_table(setting, in_channels=in_channels, stem_stride=stem_stride)
    return MobileNetV2RS(resolve_layout(layers, **options), num_classes=num_classes, setting=setting)


def layout_of_config(config: ModelConfig) -> ReplicationSplitLayout:
    """The validated layout ``config`` describes; an EdgekitError for any other model or unknown options."""
    if config.name not in _TABLES:
        twin = {"mobilenet_v2": "mobilenet_v2_rs", "mobilenet_v2_cifar": "mobilenet_v2_rs_cifar"}.get(config.name)
        hint = f" (use {twin}: same state_dict keys, so its weights load as they are)" if twin else ""
        raise EdgekitError(f"model {config.name!r} is not a replication/split MobileNetV2; "
                           f"expected one of {sorted(_TABLES)}{hint}")
    unknown = sorted(set(config.options) - set(OPTIONS))
    if unknown:
        raise EdgekitError(f"model {config.name!r} does not take options {unknown}; it takes {list(OPTIONS)}")
    setting, stem_stride = _TABLES[config.name]
    layers = vanilla_layer_table(setting, in_channels=config.in_channels, stem_stride=stem_stride)
    return resolve_layout(layers, **config.options)


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
