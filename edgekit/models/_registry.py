"""A small model registry in the style of torchvision.models: names -> builders + input specs."""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

from edgekit.core.errors import EdgekitError
from edgekit.data.preprocessing import IMAGENET_MEAN, IMAGENET_STD, Preprocessing


@dataclass(frozen=True)
class InputRule:
    """The square input sizes a network takes, and why (torchvision's weights record a minimum; VGG's
    AdaptiveAvgPool2d(7) exports to ONNX only at one size)."""

    minimum: int = 1
    only: int | None = None
    why: str = ""

    def problem(self, size: int) -> str | None:
        if self.only is not None and size != self.only:
            return f"takes {self.only} px input only, got {size} ({self.why})"
        if size < self.minimum:
            return f"needs input of at least {self.minimum} px, got {size}" + (f" ({self.why})" if self.why else "")
        return None


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about a registered model besides its weights."""

    name: str
    builder: Callable
    input_size: int | None  # None: no natural size (a user's module), --input-size is required
    description: str
    in_channels: int = 3
    num_classes: int = 1000
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    # Shorter-side resize before the centre crop; None resizes straight to input_size.
    resize: int | None = None
    family: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    interpolation: str = "bilinear"
    input_rule: InputRule = InputRule()
    # Builder options every config of this model starts with (a user module's source hash).
    default_options: dict = field(default_factory=dict, hash=False)
    # tag -> edgekit.models.pretrained.PretrainedWeights, for models with published weights.
    pretrained: Callable | None = None

    def preprocessing(self, *, input_size: int | None = None, in_channels: int | None = None) -> Preprocessing:
        size = self.input_size if input_size is None else input_size
        if size is None:
            raise EdgekitError(f"model {self.name!r} has no default input size: pass --input-size")
        channels = self.in_channels if in_channels is None else in_channels
        mean, std = self.mean, self.std
        if channels != len(mean):
            # A grayscale variant of an RGB model: use the average statistics per channel.
            mean = (sum(mean) / len(mean),) * channels
            std = (sum(std) / len(std),) * channels
        resize = None
        if self.resize is not None:
            resize = round(self.resize * size / self.input_size)
        return Preprocessing(input_size=(size, size), channels=channels, mean=mean, std=std, resize=resize,
                             interpolation=self.interpolation)


_REGISTRY: dict[str, ModelSpec] = {}
# Names resolved on demand rather than registered one by one: ``torchvision:<name>`` (80 networks,
# listed by torchvision itself) and ``file.py:function`` (unknowable in advance). The first
# resolver whose ``claims(name)`` is true turns the name into a ModelSpec.
_RESOLVERS: list[tuple[Callable[[str], bool], Callable[[str], ModelSpec]]] = []


def register_model(name: str, *, input_size: int, description: str, **spec_fields):
    """Decorator: ``@register_model("mobilenet_v2", input_size=224, description=...)``."""

    def wrap(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(
            name=name, builder=builder, input_size=input_size, description=description,
            family=builder.__module__.rsplit(".", 1)[-1], **spec_fields,
        )
        return builder

    return wrap


def register_resolver(claims: Callable[[str], bool], resolve: Callable[[str], ModelSpec]) -> None:
    """``resolve(name)`` answers every name ``claims(name)`` accepts (and is asked in registration order)."""
    _RESOLVERS.append((claims, resolve))


def _register_families() -> None:
    """Every family registers on its import; the package imports them on the registry's first use."""
    from edgekit.models import register_families

    register_families()


def list_models(include: str | None = None) -> list[str]:
    _register_families()
    names = sorted(_REGISTRY)
    return [n for n in names if include is None or fnmatch.fnmatch(n, include)]


def get_spec(name: str) -> ModelSpec:
    _register_families()
    if name in _REGISTRY:
        return _REGISTRY[name]
    for claims, resolve in _RESOLVERS:
        if claims(name):
            return resolve(name)
    raise EdgekitError(
        f"unknown model {name!r}; registered models: {', '.join(list_models())} "
        "(or torchvision:NAME, file.py:function, package.module:function, or a path to an .onnx file)"
    )


# Bounds that keep a config buildable: a 10^9-class head or a 10^5-pixel input is a typo, not a model.
_CONFIG_RANGES = (("num_classes", 1, 100_000), ("in_channels", 1, 16), ("input_size", 1, 4096))


def _short(record) -> str:
    text = repr(record)
    return text if len(text) <= 120 else text[:117] + "..."


@dataclass(frozen=True)
class ModelConfig:
    """Enough to rebuild a registered model: stored in checkpoints and manifests.

    ``options`` are the builder's extra keyword arguments (e.g. the replicated blocks and split
    position of a searched MobileNetV2); they must be JSON-serialisable.
    """

    name: str
    num_classes: int
    in_channels: int
    input_size: int
    options: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        record = {"name": self.name, "num_classes": self.num_classes,
                  "in_channels": self.in_channels, "input_size": self.input_size}
        if self.options:
            record["options"] = dict(self.options)
        return record

    def __post_init__(self) -> None:
        for name, low, high in _CONFIG_RANGES:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise EdgekitError(f"model {self.name!r}: {name} must be an integer from {low} to {high}, got {value!r}")
        if not isinstance(self.options, dict):
            raise EdgekitError(f"model {self.name!r}: options must be a mapping, got {type(self.options).__name__}")

    @classmethod
    def from_dict(cls, record: dict) -> ModelConfig:
        """Strict: a checkpoint or manifest is untrusted, so types are checked, not coerced."""
        if not isinstance(record, dict):
            raise EdgekitError(f"model config must be an object, got {type(record).__name__}")
        missing = [key for key in ("name", "num_classes", "in_channels", "input_size") if key not in record]
        if missing or not isinstance(record.get("name"), str):
            raise EdgekitError(f"model config {_short(record)} lacks {', '.join(missing) or 'a string name'}")
        return cls(record["name"], record["num_classes"], record["in_channels"], record["input_size"],
                   record.get("options") or {})


def default_config(name: str, *, num_classes: int | None = None, in_channels: int | None = None,
                   input_size: int | None = None, options: dict | None = None) -> ModelConfig:
    spec = get_spec(name)
    input_size = spec.input_size if input_size is None else input_size
    if input_size is None:
        raise EdgekitError(f"model {name!r} has no default input size: pass --input-size")
    # `is None`, not `or`: an explicit 0 is an error to report, not a request for the default.
    config = ModelConfig(name, spec.num_classes if num_classes is None else num_classes,
                         spec.in_channels if in_channels is None else in_channels,
                         input_size, {**spec.default_options, **(options or {})})
    problem = spec.input_rule.problem(config.input_size)
    if problem:
        raise EdgekitError(f"model {name!r} {problem}")
    return config


def _accepts_options(builder: Callable, options: dict) -> bool:
    """Whether ``builder`` has a keyword parameter for every option (or takes ``**kwargs``)."""
    parameters = inspect.signature(builder).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return True
    keywords = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return set(options) <= keywords


def build_model(config: ModelConfig, *, pruned_shapes: dict | None = None):
    """A freshly initialised ``torch.nn.Module`` for ``config``.

    ``pruned_shapes`` (recorded by channel pruning) resizes its layers to the pruned network's,
    so that the pruned checkpoint's state_dict loads strictly.
    """
    spec = get_spec(config.name)
    if not _accepts_options(spec.builder, config.options):
        raise EdgekitError(f"model {config.name!r} does not take options {sorted(config.options)}")
    model = spec.builder(num_classes=config.num_classes, in_channels=config.in_channels, **config.options)
    if pruned_shapes:
        from edgekit.models.pruned_shapes import (
            apply_pruned_shapes,  # torch: only when a model is built
        )

        apply_pruned_shapes(model, pruned_shapes)
    return model
