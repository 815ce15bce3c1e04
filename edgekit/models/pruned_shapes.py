"""Rebuilding a channel-pruned model: its layer sizes as a weights-only-safe record, and back.

Channel pruning (:mod:`edgekit.prune.structured`) makes layers narrower than the registry builds
them. :func:`pruned_shapes` records every resizable layer's size and the widths container blocks
keep in attributes; :func:`apply_pruned_shapes` gives a fresh build that layout, so the pruned
checkpoint's state_dict loads strictly (``build_model(config, pruned_shapes=...)``).
"""

from __future__ import annotations

from torch import nn

from edgekit.core.errors import EdgekitError

SHAPES_FORMAT = "edgekit.pruned_shapes/1"
# Container blocks that record their widths (torchvision's Conv2dNormActivation, kEffNet's blocks).
WIDTH_ATTRIBUTES = ("in_channels", "out_channels")
BATCHNORM = nn.modules.batchnorm._BatchNorm
# Record "type" -> the layers it resizes.
RESIZABLE_LAYERS = {"Conv2d": nn.Conv2d, "Linear": nn.Linear, "BatchNorm": BATCHNORM}


def records_widths(module: nn.Module) -> bool:
    """A container block (not a resizable layer itself) that keeps its channel widths in attributes."""
    return not isinstance(module, tuple(RESIZABLE_LAYERS.values())) and any(
        isinstance(getattr(module, a, None), int) for a in WIDTH_ATTRIBUTES)


def pruned_shapes(model: nn.Module) -> dict:
    """What :func:`apply_pruned_shapes` needs to give a fresh build ``model``'s pruned layout.

    Every Conv2d, Linear and BatchNorm size, and the widths container blocks record; plain ints and
    strings, so it is saved beside the state_dict and loads with ``torch.load(..., weights_only=True)``.
    """
    layers: dict[str, dict] = {}
    widths: dict[str, dict] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            layers[name] = {"type": "Conv2d", "in_channels": module.in_channels,
                            "out_channels": module.out_channels, "groups": module.groups}
        elif isinstance(module, nn.Linear):
            layers[name] = {"type": "Linear", "in_features": module.in_features, "out_features": module.out_features}
        elif isinstance(module, BATCHNORM):
            layers[name] = {"type": "BatchNorm", "num_features": module.num_features}
        elif records_widths(module):
            widths[name] = {a: getattr(module, a) for a in WIDTH_ATTRIBUTES if isinstance(getattr(module, a, None), int)}
    return {"format": SHAPES_FORMAT, "layers": layers, "widths": widths}


def apply_pruned_shapes(model: nn.Module, shapes: dict) -> None:
    """Resize a freshly built registry model, in place, to the layout :func:`pruned_shapes` recorded.

    Resized layers get new uninitialised tensors: load the pruned state_dict next
    (``model.load_state_dict(state_dict)``, strict).
    """
    if not isinstance(shapes, dict) or shapes.get("format") != SHAPES_FORMAT:
        found = shapes.get("format") if isinstance(shapes, dict) else type(shapes).__name__
        raise EdgekitError(f"pruned shapes must be a {SHAPES_FORMAT!r} record, got {found!r}")
    if not isinstance(shapes.get("layers"), dict) or not isinstance(shapes.get("widths"), dict):
        raise EdgekitError(f"pruned shapes record lacks its 'layers'/'widths' tables: keys {sorted(shapes)}")
    modules = dict(model.named_modules())
    ours = {name for name, m in modules.items() if isinstance(m, tuple(RESIZABLE_LAYERS.values()))}
    recorded = set(shapes["layers"])
    if ours != recorded:
        example = sorted(ours ^ recorded)[0]
        raise EdgekitError(f"pruned shapes do not fit this model: layer {example!r} is in only one of them "
                           f"({len(ours - recorded)} layers unrecorded, {len(recorded - ours)} recorded layers missing)")
    for name, record in shapes["layers"].items():
        kind = RESIZABLE_LAYERS.get(record.get("type"))
        if kind is None or not isinstance(modules[name], kind):
            raise EdgekitError(f"pruned shapes do not fit this model: {name!r} is a {type(modules[name]).__name__}, "
                               f"the record has a {record.get('type')}")
        try:
            _resize(modules[name], record)
        except (KeyError, TypeError) as error:
            raise EdgekitError(f"pruned shapes record for {name!r} is malformed: {record!r}") from error
    for name, record in shapes["widths"].items():
        if name not in modules:
            raise EdgekitError(f"pruned shapes do not fit this model: it has no block {name!r}")
        for attribute, value in record.items():
            setattr(modules[name], attribute, int(value))


def _resize(module: nn.Module, record: dict) -> None:
    """Give ``module`` the recorded size with fresh, uninitialised parameters (and buffers)."""
    if isinstance(module, nn.Conv2d):
        size = (int(record["in_channels"]), int(record["out_channels"]), int(record["groups"]))
        if size != (module.in_channels, module.out_channels, module.groups):
            module.in_channels, module.out_channels, module.groups = size
            module.weight = nn.Parameter(module.weight.new_empty(size[1], size[0] // size[2], *module.kernel_size))
            if module.bias is not None:
                module.bias = nn.Parameter(module.bias.new_empty(size[1]))
    elif isinstance(module, nn.Linear):
        size = (int(record["in_features"]), int(record["out_features"]))
        if size != (module.in_features, module.out_features):
            module.in_features, module.out_features = size
            module.weight = nn.Parameter(module.weight.new_empty(size[1], size[0]))
            if module.bias is not None:
                module.bias = nn.Parameter(module.bias.new_empty(size[1]))
    else:
        count = int(record["num_features"])
        if count != module.num_features:
            module.num_features = count
            if module.affine:
                module.weight = nn.Parameter(module.weight.new_empty(count))
                module.bias = nn.Parameter(module.bias.new_empty(count))
            if module.running_mean is not None:
                module.running_mean = module.running_mean.new_empty(count)
                module.running_var = module.running_var.new_empty(count)
