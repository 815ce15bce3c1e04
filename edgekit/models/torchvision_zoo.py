"""Any torchvision classification network by name: ``torchvision:resnet18``, ``torchvision:convnext_tiny``.

Through torchvision's own API (``list_models(module=torchvision.models)``, ``get_model``,
``get_model_weights``), so a new torchvision release brings its new networks. The preprocessing is
what the weights declare (``weights.transforms()``: resize, crop, mean/std, interpolation). Networks
the pipeline does not handle are refused up front, with the reason, from the tables below.
"""

from __future__ import annotations

import fnmatch
from dataclasses import replace
from functools import lru_cache

from edgekit.core.errors import EdgekitError
from edgekit.models._registry import InputRule, ModelSpec, register_resolver
from edgekit.models.pretrained import PretrainedWeights

PREFIX = "torchvision:"

# Refused, with the reason (fnmatch patterns over torchvision's names). edgekit's export, int8
# recipes and tests are for CNNs at a size the user picks.
REFUSED = (
    ("vit_*", "a vision transformer: its position embeddings fix the input size (the forward asserts it), "
              "and edgekit's int8 recipes are for CNNs"),
    ("swin_*", "a shifted-window transformer (its weights record 224 px as the smallest input), not a CNN: "
               "edgekit's int8 recipes are for CNNs"),
    ("maxvit_*", "a multi-axis attention transformer built for one input size (its block and grid "
                 "partitions are computed from it), not a CNN"),
)
# protobuf caps an ONNX file at 2 GiB; the fp32 weights of a bigger network cannot be one file.
ONNX_MAX_BYTES = 2**31

# torchvision's AdaptiveAvgPool2d before a fixed-size classifier exports to ONNX only when the
# feature map is a multiple of the pooled size (measured: 2 -> 7 fails); at 224 px it is exact.
FIXED_INPUT = (
    ("vgg*", 224, "AdaptiveAvgPool2d((7, 7)) exports to ONNX only when the feature map divides into 7"),
    ("alexnet", 224, "AdaptiveAvgPool2d((6, 6)) exports to ONNX only when the feature map divides into 6"),
)

# Builder arguments torchvision's builders set themselves when they load weights (googlenet.py,
# inception.py: `_ovewrite_named_param`); recorded as options so a rebuild without the weights has the
# same layers and the same forward (transform_input re-normalises the input inside the network).
WEIGHTS_IMPLY = {
    "googlenet": {"transform_input": True, "aux_logits": True, "init_weights": False},
    "inception_v3": {"transform_input": True, "aux_logits": True, "init_weights": False},
}


def claims(name: str) -> bool:
    return name.startswith(PREFIX)


def torchvision_names() -> list[str]:
    """Every classification network this torchvision has (refused ones included), sorted."""
    from torchvision import models

    return sorted(models.list_models(module=models))


def listing(pattern: str | None = None) -> list[tuple[str, ModelSpec | None, str | None]]:
    """(torchvision:NAME, its spec or None, why it is refused or None) for every network; ``pattern``
    globs over the bare or the prefixed name."""
    rows = []
    for name in torchvision_names():
        if pattern is not None and not (fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(PREFIX + name, pattern)):
            continue
        reason = refusal(name)
        rows.append((PREFIX + name, None if reason else _spec(name), reason))
    return rows


def refusal(name: str) -> str | None:
    """Why ``name`` (bare torchvision name) cannot go through the pipeline, or None."""
    for pattern, reason in REFUSED:
        if fnmatch.fnmatch(name, pattern):
            return reason
    params = _default_weights(name).meta.get("num_params", 0)
    if params * 4 > ONNX_MAX_BYTES:
        return f"{params / 1e6:.0f} M parameters: its fp32 ONNX file would exceed protobuf's 2 GiB limit"
    return None


def _default_weights(name: str):
    from torchvision import models

    return models.get_model_weights(name).DEFAULT


def resolve(spec_name: str) -> ModelSpec:
    name = spec_name[len(PREFIX):]
    known = torchvision_names()
    if name not in known:
        close = [n for n in known if n.startswith(name[:4])] if name else []
        raise EdgekitError(f"torchvision has no classification model {name!r}"
                           + (f" (similar: {', '.join(close[:8])})" if close else "")
                           + "; `edgekit models --all` lists them")
    reason = refusal(name)
    if reason:
        raise EdgekitError(f"{spec_name} is not supported: {reason}")
    return _spec(name)


@lru_cache(maxsize=None)
def _spec(name: str) -> ModelSpec:
    weights = _default_weights(name)
    fixed = [(size, why) for pattern, size, why in FIXED_INPUT if fnmatch.fnmatch(name, pattern)]
    minimum = weights.meta.get("min_size", (1, 1))[0]
    rule = InputRule(only=fixed[0][0], why=fixed[0][1]) if fixed else \
        InputRule(minimum=minimum, why="the smallest input torchvision's weights record" if minimum > 1 else "")
    return ModelSpec(
        name=PREFIX + name, builder=_builder(name), family="torchvision", input_rule=rule,
        description=f"torchvision {name} ({weights.meta.get('num_params', 0) / 1e6:.1f} M params; "
                    f"weights: {', '.join(_tags(name))})",
        num_classes=len(weights.meta["categories"]), pretrained=lambda tag: _pretrained(name, tag),
        **_declared_preprocessing(weights))


def _declared_preprocessing(weights) -> dict:
    """ModelSpec fields from ``weights.transforms()`` (torchvision's ImageClassification: resize the
    shorter side, centre-crop, scale to [0, 1], normalise)."""
    transforms = weights.transforms()
    return {"input_size": transforms.crop_size[0], "resize": transforms.resize_size[0],
            "mean": tuple(transforms.mean), "std": tuple(transforms.std),
            "interpolation": transforms.interpolation.value}


def _tags(name: str) -> list[str]:
    from torchvision import models

    return [member.name for member in models.get_model_weights(name)]


def _pretrained(name: str, tag: str) -> PretrainedWeights:
    """``tag`` (DEFAULT, IMAGENET1K_V1 or ResNet18_Weights.IMAGENET1K_V1) of ``name``'s weights."""
    from torchvision import models

    enum = models.get_model_weights(name)
    enum_name, dot, member_name = tag.rpartition(".")
    if (dot and enum_name != enum.__name__) or member_name not in enum.__members__:
        raise EdgekitError(f"--pretrained {tag!r}: {PREFIX}{name} has weights {', '.join(_tags(name))} "
                           f"(DEFAULT is {enum.DEFAULT.name})")
    member = enum[member_name]
    if not member.meta.get("categories"):  # VGG16's IMAGENET1K_FEATURES: its classifier is NaN by design
        raise EdgekitError(f"--pretrained {tag!r}: {enum.__name__}.{member.name} are feature-extraction weights "
                           "without a trained classifier")
    return PretrainedWeights(
        label=f"{enum.__name__}.{member.name}", url=member.url, categories=len(member.meta["categories"]),
        spec=replace(_spec(name), **_declared_preprocessing(member)), options=dict(WEIGHTS_IMPLY.get(name, {})),
        download=lambda: member.get_state_dict(progress=True, check_hash=True, weights_only=True, map_location="cpu"))


def _builder(name: str):
    def build(*, num_classes: int, in_channels: int = 3, **options):
        from torchvision import models

        model = models.get_model(name, weights=None, num_classes=num_classes, **options)
        if in_channels != 3:
            _replace_stem(model, in_channels)
        return model

    build.__name__ = name
    return build


def _replace_stem(model, in_channels: int) -> None:
    """The first 3-channel convolution, re-made for ``in_channels`` (grayscale: 1)."""
    from torch import nn

    from edgekit.models._surgery import replace_conv

    for path, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            parent_path, _, attribute = path.rpartition(".")
            parent = model.get_submodule(parent_path) if parent_path else model
            setattr(parent, attribute, replace_conv(module, in_channels=in_channels))
            return
    raise EdgekitError(f"cannot find the first convolution of torchvision's {type(model).__name__} to change "
                       "its input channels")


register_resolver(claims, resolve)
