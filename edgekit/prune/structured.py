"""Structured channel pruning with torch-pruning (DepGraph).

:func:`prune_channels` removes whole channels, so the network really gets smaller and faster.
torch-pruning traces the model into groups of coupled layers (a conv's outputs, the BN after it,
every consumer's inputs, everything joined by a residual add) and removes the same channels from
the whole group. It does not understand every layer edgekit's models use. Where torch-pruning
1.6.1 would get a group wrong, the group is left whole and its layers are listed, with the reason,
in ``StructuredResult.skipped``:

- the channels pass through a reshape/transpose permutation (``ChannelInterleave``, the channel
  shuffle of kEffNet and the compressed ResNet/VGG blocks; DiCE's axis swaps): torch-pruning takes
  the transpose for an element-wise op, so it would drop channel ``i`` before the permutation and a
  different channel after it;
- a grouped conv has one input or one output per group (kEffNet's SE convs, DiCE's fuse): such a
  conv cannot lose channels without losing groups, which torch-pruning does only for depthwise
  convs (and it takes any conv with ``groups == out_channels`` for one, cutting its inputs too);
- grouped convs with different group counts share the channels: torch-pruning keeps the count
  divisible by the largest group count only;
- a layer's channels are tied to each other (a ghost module concatenates a conv's output with a
  depthwise conv of it): torch-pruning ranks tied channels one by one and removes far more than
  asked (91% instead of 50% in ``resnet101_c32_col12``);
- ``round_to`` with grouped convs: torch-pruning rounds the whole channel count, then removes that
  many channels from every conv group;
- the channels reach kEffNet 2022's ``PaddedGroupConv``, which pads its input with slices of
  itself: following channels through it, torch-pruning's group search never ends, so the block is
  opaque to it (its convs inside are left whole too);
- a depthwise conv reads the model input (pruning it would remove input channels), or the layers
  produce the model's outputs (the classifier keeps every class).

Afterwards the model must compute exactly what the unpruned one computes with the removed
channels zeroed; :func:`prune_channels` checks that on ``example_input`` and raises otherwise,
so a layer torch-pruning mishandles in a way not listed above cannot slip through silently.
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass
from importlib.metadata import version

import torch
from torch import nn

from edgekit.core.errors import EdgekitError
from edgekit.models.layers.grouped_pointwise_interleave import PaddedGroupConv
from edgekit.models.pruned_shapes import BATCHNORM, WIDTH_ATTRIBUTES, records_widths
from edgekit.models.stats import module_stats

# Relative to the largest output: summation order changes once channels are gone.
EQUIVALENCE_TOLERANCE = 1e-4
# Autograd nodes that reorder channels; torch-pruning 1.6.1 treats all of them as element-wise.
_PERMUTING_OPS = re.compile(r"Transpose|Permute|ChannelShuffle|PixelShuffle|PixelUnshuffle|Index|Gather", re.I)


@dataclass
class StructuredResult:
    """The pruned network (the object passed in, now smaller) and its size before and after.

    ``macs_*`` are multiply-adds for one image, counted by ``edgekit models --stats``'s counter
    (:func:`edgekit.models.stats.module_stats`: PyTorch's flop counter, convs and matmuls).
    """

    model: nn.Module
    skipped: list[str]
    params_before: int
    params_after: int
    macs_before: int
    macs_after: int


def prune_channels(model: nn.Module, example_input: torch.Tensor, *, ratio: float,
                   round_to: int | None = None) -> StructuredResult:
    """Remove ``ratio`` of the channels of every prunable group of ``model``, in place.

    ``ratio`` is torch-pruning's ``pruning_ratio`` with local ranking: each group of coupled layers
    keeps ``floor(channels * (1 - ratio))`` of its channels, the ones with the largest L1 norm of
    all their weights across the group (``GroupMagnitudeImportance(p=1)``). In a group with grouped
    convs, channels are ranked by their position within a conv group and the same positions go
    from every conv group, so the count stays divisible by the group count. ``round_to`` rounds
    each kept count down to a multiple of it (e.g. 8 for vectorised int8 kernels).
    ``example_input`` (batch first; real or random images, not zeros) is traced by torch-pruning
    and the pruned network is checked on it. The model's train/eval mode is restored afterwards;
    after an error it may be left partly pruned (rebuild it from its checkpoint).
    """
    if not 0 < ratio < 1:
        raise EdgekitError(f"pruning ratio must be in (0, 1), got {ratio}")
    if round_to is not None and (isinstance(round_to, bool) or not isinstance(round_to, int) or round_to < 1):
        raise EdgekitError(f"round_to must be a positive integer or None, got {round_to!r}")
    if not isinstance(example_input, torch.Tensor) or example_input.dim() < 2:
        raise EdgekitError(f"example_input must be a batch tensor (N, C, ...), got {type(example_input).__name__}")
    was_training = model.training
    # Tracing runs forward passes: in train mode they would move the BatchNorm statistics.
    model.eval()
    try:
        try:
            with torch.no_grad():
                expected_shape = model(example_input).shape
        except RuntimeError as error:
            raise EdgekitError(f"{type(model).__name__} does not run on an example_input of shape "
                               f"{tuple(example_input.shape)}") from error
        before = module_stats(model, example_input[:1])
        names = {module: name for name, module in model.named_modules()}
        out_widths = {m: _out_width(m) for m in names if isinstance(m, (nn.Conv2d, nn.Linear))}
        reasons, reference = _prune_groups(model, example_input, names, ratio=ratio, round_to=round_to)
        _check_equivalent(model, reference, example_input, expected_shape)
        after = module_stats(model, example_input[:1])
    finally:
        model.train(was_training)
    skipped = [f"{names[m]}: {reason}" for m, reason in reasons.items()]
    skipped += [f"{names[m]}: torch-pruning removed none of its output channels at ratio {ratio} (it leaves a "
                "group whole where its ranking would empty a layer, e.g. one branch of a concat)"
                for m, width in out_widths.items() if m not in reasons and _out_width(m) == width]
    return StructuredResult(model, skipped, before["params"], after["params"], before["macs"], after["macs"])


def _prune_groups(model: nn.Module, example_input: torch.Tensor, names: dict, *, ratio: float,
                  round_to: int | None) -> tuple[dict[nn.Module, str], nn.Module]:
    """Prune every group torch-pruning handles, in place.

    Returns {layer left whole: why} and an unpruned copy with the removed channels zeroed.
    """
    import torch_pruning as tp

    widths_before = _widths(model, example_input)
    reference = copy.deepcopy(model)
    reference_modules = dict(reference.named_modules())
    opaque = _opaque_modules()
    try:
        with warnings.catch_warnings():
            # torch-pruning's reshape handling gives up on long op chains and warns on every group
            # search; whatever it then gets wrong, the equivalence check catches.
            warnings.filterwarnings("ignore", message="Maximum recursive depth reached")
            reasons = _unprunable_layers(model, example_input, names, opaque, round_to=round_to)
            pruner = tp.pruner.BasePruner(
                model, example_input, importance=tp.importance.GroupMagnitudeImportance(p=1),
                pruning_ratio=ratio, round_to=round_to, ignored_layers=list(reasons), customized_pruners=opaque,
                # Fresh dicts: BasePruner writes into these, and their defaults are shared between calls.
                in_channel_groups={}, out_channel_groups={},
            )
            for group in pruner.step(interactive=True):
                _zero_removed_channels(group, pruner.DG, names, reference_modules)
                group.prune()
        # Container blocks' recorded widths are read off a forward pass of the pruned network.
        widths_after = _widths(model, example_input)
    except (AssertionError, IndexError, RuntimeError, ValueError) as error:
        # How torch-pruning fails on layers it mishandles: e.g. IndexError for kEffNet's SE convs
        # without the rules below, RuntimeError when a pruned layer no longer fits its input.
        raise EdgekitError(f"torch-pruning {version('torch-pruning')} failed to prune {type(model).__name__}") from error
    _sync_width_attributes(model, widths_before, widths_after)
    return reasons, reference


# --- which groups torch-pruning would get wrong -------------------------------------------------

def _opaque_modules() -> dict:
    """{module type: torch-pruning "pruner"} for blocks torch-pruning must not look inside.

    kEffNet 2022's ``PaddedGroupConv`` pads its input by concatenating it with slices of itself;
    following channels through that, torch-pruning's group search grows without bound (minutes
    and gigabytes on ``keffnet2_b0_32ch``, where it never finished). As an opaque block whose
    inputs and outputs are not tied, it ends the search; groups that reach it are left whole.
    """
    import torch_pruning as tp

    class Opaque(tp.pruner.BasePruningFunc):
        def prune_out_channels(self, layer, idxs):
            raise RuntimeError(f"{type(layer).__name__} cannot be pruned")

        def prune_in_channels(self, layer, idxs):  # a different function: no in/out coupling
            raise RuntimeError(f"{type(layer).__name__} cannot be pruned")

        def get_out_channels(self, layer):
            return None

        def get_in_channels(self, layer):
            return None

    return {PaddedGroupConv: Opaque()}


def _unprunable_layers(model: nn.Module, example_input: torch.Tensor, names: dict, opaque: dict, *,
                       round_to: int | None) -> dict[nn.Module, str]:
    """{conv/linear: why its output channels must stay}, for every group torch-pruning would break."""
    from torch_pruning import ops

    graph, op_owner = _trace(model, example_input, opaque)
    reasons: dict[nn.Module, str] = {}
    for module, name in names.items():
        if isinstance(module, (nn.Conv2d, nn.Linear)) and module not in graph.module2node:
            blocks = [(n, type(m).__name__) for m, n in names.items() if type(m) in opaque and name.startswith(n + ".")]
            reasons[module] = (f"inside {blocks[0][0]} ({blocks[0][1]}), which torch-pruning treats as one opaque block"
                               if blocks else "not reached by example_input")
    for group in graph.get_all_groups(root_module_types=[ops.TORCH_CONV, ops.TORCH_LINEAR]):
        reason = _group_problem(group, graph, names, op_owner, round_to)
        if reason is None:
            continue
        for dep, _ in group:
            module = dep.target.module
            if isinstance(module, (nn.Conv2d, nn.Linear)) and graph.is_out_channel_pruning_fn(dep.handler):
                reasons.setdefault(module, reason)
    return reasons


def _trace(model: nn.Module, example_input: torch.Tensor, opaque: dict):
    """torch-pruning's dependency graph, and {autograd node: name of the module that output it}."""
    import torch_pruning as tp

    op_owner: dict = {}

    def remember(name):
        def hook(module, args, output):
            if isinstance(output, torch.Tensor) and output.grad_fn is not None:
                op_owner.setdefault(output.grad_fn, name)  # inner modules' hooks run first
        return hook

    handles = [m.register_forward_hook(remember(n)) for n, m in model.named_modules() if n]
    try:
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False,
                                                      customized_pruners=opaque)
    finally:
        for handle in handles:
            handle.remove()
    return graph, op_owner


def _group_problem(group, graph, names: dict, op_owner: dict, round_to: int | None) -> str | None:
    """Why torch-pruning 1.6.1 would prune this group wrongly, or None."""
    # A node without consumers is a model output. Only its output side must stay: a classifier's
    # input features are in the previous layer's group and may shrink.
    if any(not dep.target.outputs and graph.is_out_channel_pruning_fn(dep.handler) for dep, _ in group):
        return "its outputs are the model's outputs"
    # Group order (root first), not a set: the reason names the same layer on every run.
    nodes = list(dict.fromkeys(node for dep, _ in group for node in (dep.target, dep.source)))
    for node in nodes:
        if type(node.module) in graph.CUSTOMIZED_PRUNERS:
            return (f"its channels reach {names[node.module]} ({type(node.module).__name__}), which pads its input with "
                    "slices of itself; torch-pruning cannot follow channels through that")
    for node in nodes:
        if node.grad_fn is not None and _PERMUTING_OPS.search(type(node.grad_fn).__name__):
            return (f"its channels pass through a channel permutation ({type(node.grad_fn).__name__} in "
                    f"{_owner(node, op_owner)}) that torch-pruning treats as element-wise, so it would "
                    "remove different channels before and after it")
    convs = [node.module for node in nodes if isinstance(node.module, nn.Conv2d)]
    for conv in convs:
        # No input node: the conv reads a tensor that no parameterised layer produced, the input.
        if _is_depthwise(conv) and not graph.module2node[conv].inputs:
            return f"depthwise conv {names[conv]} reads the model input, whose channels must stay"
        if conv.groups > 1 and not _is_depthwise(conv) and conv.groups in (conv.in_channels, conv.out_channels):
            side = "output" if conv.groups == conv.out_channels else "input"
            return (f"grouped conv {names[conv]} ({conv.in_channels}->{conv.out_channels}, {conv.groups} groups) has "
                    f"one {side} channel per group; torch-pruning removes groups only from depthwise convs")
    counts = sorted({conv.groups for conv in convs if conv.groups > 1 and not _is_depthwise(conv)})
    if any(counts[-1] % count for count in counts):
        return (f"grouped convs with {' and '.join(map(str, counts))} groups share these channels; torch-pruning "
                "keeps the count divisible by the largest only")
    root = group[0].dep
    tied = len(set(graph.get_pruning_group(root.target.module, root.handler, [0])[0].idxs))
    if tied > 1:
        return (f"its channels come in tied sets of {tied} (e.g. a concat of a conv's output with a depthwise conv "
                "of it, as in a ghost module); torch-pruning ranks them one by one and would overshoot the ratio")
    if counts and round_to:
        # BasePruner._round_to rounds the whole count, then takes that many from every conv group:
        # 144 channels in 8 groups at ratio 0.5 with round_to=8 would keep 16, not 72.
        return (f"round_to={round_to} with {counts[-1]}-group convs: torch-pruning rounds the whole channel count "
                "but removes that many channels from every conv group")
    return None


def _owner(node, op_owner: dict) -> str:
    """The module a permuting autograd node belongs to: the first module output at or after it."""
    queue, seen = [node], set()
    while queue:
        current = queue.pop(0)
        if current.grad_fn in op_owner:
            return op_owner[current.grad_fn]
        seen.add(current)
        queue += [n for n in current.outputs if n not in seen]
    return "an unnamed op"


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def _out_width(module: nn.Module) -> int:
    return module.out_channels if isinstance(module, nn.Conv2d) else module.out_features


# --- checking the result ------------------------------------------------------------------------

@torch.no_grad()
def _zero_removed_channels(group, graph, names: dict, reference_modules: dict) -> None:
    """Make the unpruned reference output zeros on the channels this group removes.

    A conv's filter and bias, or a BN's scale, shift and mean, set to zero make the channel zero;
    the activations edgekit's models use (ReLU family, SiLU, hardswish, GELU) keep it zero, so
    consumers see nothing of it, which is what removing it must amount to.
    """
    for dep, idxs in group:
        module = dep.target.module
        if not idxs or not graph.is_out_channel_pruning_fn(dep.handler) or module not in names:
            continue
        twin = reference_modules[names[module]]
        index = torch.as_tensor(idxs, dtype=torch.long)
        if isinstance(twin, (nn.Conv2d, nn.Linear)):
            twin.weight[index] = 0
        elif isinstance(twin, BATCHNORM):
            if twin.weight is not None:
                twin.weight[index] = 0
            if twin.running_mean is not None:
                twin.running_mean[index] = 0
        else:
            continue
        if twin.bias is not None:
            twin.bias[index] = 0


@torch.no_grad()
def _check_equivalent(model: nn.Module, reference: nn.Module, example_input: torch.Tensor,
                      expected_shape: torch.Size) -> None:
    try:
        pruned = model(example_input)
    except RuntimeError as error:
        raise EdgekitError("the pruned network no longer runs on example_input") from error
    if pruned.shape != expected_shape:
        raise EdgekitError(f"pruning changed the output shape from {tuple(expected_shape)} to {tuple(pruned.shape)}")
    wanted = reference(example_input)
    error = ((pruned - wanted).abs().max() / wanted.abs().max().clamp_min(1e-12)).item()
    if not error <= EQUIVALENCE_TOLERANCE:  # also catches NaN
        raise EdgekitError(
            f"the pruned network differs from the original with the removed channels zeroed (relative max "
            f"error {error:.2e} > {EQUIVALENCE_TOLERANCE:g}): torch-pruning mishandled a layer of this model"
        )


# --- container blocks' recorded widths ---------------------------------------------------------

def _widths(model: nn.Module, example_input: torch.Tensor) -> dict[str, tuple[int | None, int | None]]:
    """{block name: (channels in, channels out)} seen in a forward pass, for blocks that record widths."""
    seen: dict[str, tuple[int | None, int | None]] = {}

    def channels(value) -> int | None:
        return value.shape[1] if isinstance(value, torch.Tensor) and value.dim() > 1 else None

    def record(name):
        def hook(module, args, output):
            seen[name] = (channels(args[0]) if args else None, channels(output))
        return hook

    handles = [m.register_forward_hook(record(n)) for n, m in model.named_modules() if records_widths(m)]
    try:
        with torch.no_grad():
            model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _sync_width_attributes(model: nn.Module, before: dict, after: dict) -> None:
    """An ``in_channels``/``out_channels`` that described a block's input/output follows it when pruned."""
    for name, module in model.named_modules():
        if name in before and name in after:
            for attribute, old, new in zip(WIDTH_ATTRIBUTES, before[name], after[name]):
                if old is not None and new is not None and getattr(module, attribute, None) == old:
                    setattr(module, attribute, new)
