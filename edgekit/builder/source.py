"""Resolve ``--model``: a registered name, ``torchvision:NAME``, ``file.py:function`` (+ optional
weights or published ``--pretrained`` ones), or an existing ONNX file."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from edgekit.artifact.folder import sha256_file
from edgekit.core.errors import EdgekitError
from edgekit.core.progress import say
from edgekit.data import Preprocessing
from edgekit.data.folders import class_folder_names
from edgekit.data.preprocessing import IMAGENET_MEAN, IMAGENET_STD
from edgekit.models import (
    build_model,
    default_config,
    get_spec,
    module_from_checkpoint,
    read_checkpoint,
)
from edgekit.models.pretrained import load_pretrained, pretrained_module
from edgekit.models.weights import class_names_problem
from edgekit.runtimes.sessions import ort_session


@dataclass
class SourceModel:
    name: str
    preprocessing: Preprocessing
    module: object | None = None  # torch.nn.Module for registered models
    config: object | None = None  # ModelConfig for registered models
    onnx_path: Path | None = None  # for ONNX input
    weights: dict | None = None  # {"path", "sha256"} of the user's weights (+ "pretrained", "url"), if any
    pruned_shapes: dict | None = None  # layer sizes of a channel-pruned network (see edgekit.prune)
    classes: list[str] | None = None  # class names in output order, when the checkpoint records them
    onnx_outputs: int | None = None  # an ONNX input's number of logits, when its graph fixes it

    @property
    def kind(self) -> str:
        return "onnx" if self.onnx_path is not None else "registry"


def is_onnx_path(model: str) -> bool:
    return str(model).lower().endswith(".onnx")


def model_file(model: str) -> Path | None:
    """The file ``--model`` reads: an .onnx file, or the .py of ``file.py:function``."""
    if is_onnx_path(model):
        return Path(model)
    location = str(model).rpartition(":")[0]
    return Path(location) if location.endswith(".py") else None


def artifact_stem(model: str) -> str:
    """A folder name for ``--model``: ``torchvision:resnet18`` -> resnet18, ``nets/my_net.py:build`` -> my_net-build."""
    model = str(model)
    if is_onnx_path(model):
        return Path(model).stem
    location, colon, function = model.rpartition(":")
    if not colon:
        return model
    if location == "torchvision":
        return function
    return f"{Path(location).stem if location.endswith('.py') else location}-{function}"


def class_names(classes) -> list[str] | None:
    """``--classes``: names in output order, as a list, "a,b,c", or an ImageFolder tree (its sorted class
    folders, the order training on it numbers them). None: not given."""
    if classes is None:
        return None
    if isinstance(classes, (list, tuple)):
        names = list(classes)
    elif Path(classes).is_dir():
        names = class_folder_names(classes, purpose="--classes folder")
    else:
        names = [name.strip() for name in str(classes).split(",")]
    problem = class_names_problem(names, None)
    if problem:
        raise EdgekitError(f"--classes: {problem.replace(repr('classes'), 'class names')} (give a,b,c or a class folder)")
    return names


def with_class_names(source: SourceModel, names: list[str] | None, *, weights=None) -> SourceModel:
    """``source`` with its outputs named by ``names`` (``class_names``' result), checked against the model."""
    if names is None:
        return source
    outputs = source.config.num_classes if source.config is not None else source.onnx_outputs
    if outputs is not None and len(names) != outputs:
        raise EdgekitError(f"--classes names {len(names)} classes, the model has {outputs} outputs")
    if source.classes is not None and list(source.classes) != names:
        raise EdgekitError(f"--classes disagrees with the class names {weights or 'the weights'} records "
                           f"({', '.join(source.classes[:6])}{' ...' if len(source.classes) > 6 else ''})")
    return replace(source, classes=names)


def resolve_model(model: str, *, weights: str | Path | None = None, pretrained: str | None = None,
                  num_classes: int | None = None, in_channels: int | None = None, input_size: int | None = None,
                  mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None) -> SourceModel:
    if is_onnx_path(model):
        for given, option in ((weights, "--weights"), (pretrained, "--pretrained")):
            if given is not None:
                raise EdgekitError(f"{option} applies to registered models, not to an .onnx --model")
        return _onnx_source(Path(model), input_size=input_size, mean=mean, std=std)
    if pretrained is not None:
        if weights is not None:
            raise EdgekitError("--weights and --pretrained both say where the weights come from: choose one")
        return _pretrained_source(model, pretrained, num_classes=num_classes, in_channels=in_channels,
                                  input_size=input_size, mean=mean, std=std)
    return _registry_source(model, weights=weights, num_classes=num_classes, in_channels=in_channels,
                            input_size=input_size, mean=mean, std=std)


def check_pretrained(name: str, tag: str, *, in_channels: int | None):
    """The published weights ``tag`` of ``name``, checked before anything is downloaded."""
    spec = get_spec(name)
    if spec.pretrained is None:
        raise EdgekitError(f"--pretrained applies to torchvision:NAME models; {name!r} has no published weights "
                           "(use --weights FILE)")
    if in_channels not in (None, 3):
        raise EdgekitError(f"--pretrained weights of {name} take 3-channel (RGB) input, not --in-channels {in_channels}")
    return spec.pretrained(tag)


def _pretrained_source(name, tag, *, num_classes, in_channels, input_size, mean, std) -> SourceModel:
    published = check_pretrained(name, tag, in_channels=in_channels)
    # The weights' own preprocessing (a tag may declare another crop than DEFAULT's, e.g. SWAG's 384 px).
    config = default_config(name, num_classes=num_classes, in_channels=in_channels,
                            input_size=_given_or(input_size, published.spec.input_size), options=published.options)
    state_dict, record = load_pretrained(published)
    module, reinitialised = pretrained_module(config, published, state_dict, source=record["path"])
    if reinitialised:
        record["reinitialised_for_num_classes"] = reinitialised
        say(f"{published.label} has {published.categories} classes: {', '.join(reinitialised)} start freshly "
            f"initialised for --num-classes {config.num_classes} (train them)")
    preprocessing = published.spec.preprocessing(input_size=config.input_size, in_channels=config.in_channels)
    return SourceModel(name=name, preprocessing=_override_stats(preprocessing, mean, std), module=module,
                       config=config, weights=record)


def _registry_source(name, *, weights, num_classes, in_channels, input_size, mean, std) -> SourceModel:
    spec = get_spec(name)
    checkpoint, weights_record, saved_config, saved_preprocessing, pruned_shapes, classes = (None,) * 6
    if weights is not None:
        checkpoint = read_checkpoint(weights)
        saved_config, saved_preprocessing = checkpoint.config, checkpoint.preprocessing
        if saved_config is not None and saved_config.name != name:
            raise EdgekitError(f"checkpoint {weights} is for model {saved_config.name!r}, not {name!r}")
    if saved_config is None:
        config = default_config(name, num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    else:
        # The checkpoint knows its head, stem and input size (a user module has no default one);
        # explicit flags still win so a mismatch is reported.
        config = default_config(name, num_classes=_given_or(num_classes, saved_config.num_classes),
                                in_channels=_given_or(in_channels, saved_config.in_channels),
                                input_size=_given_or(input_size, saved_config.input_size),
                                options=saved_config.options)
    if checkpoint is not None:
        weights_record = {"path": str(weights), "sha256": sha256_file(Path(weights))}
        pruned_shapes, classes = checkpoint.pruned_shapes, checkpoint.classes
        if classes is not None and len(classes) != config.num_classes:
            raise EdgekitError(f"--num-classes {config.num_classes} does not fit checkpoint {weights}, which was trained "
                               f"on {len(classes)} classes")
        if pruned_shapes:
            weights_record["channel_pruned"] = True
    module = build_model(config) if checkpoint is None else module_from_checkpoint(checkpoint, config=config)
    if saved_preprocessing is not None:
        # The weights were trained on this exact input pipeline (e.g. with a derived edge channel).
        preprocessing = Preprocessing.from_dict(saved_preprocessing)
        if preprocessing.input_shape[1:] != (config.in_channels, config.input_size, config.input_size):
            raise EdgekitError(
                f"checkpoint {weights} preprocessing gives {preprocessing.input_shape[1:]} inputs but the model "
                f"takes {(config.in_channels, config.input_size, config.input_size)}"
            )
    else:
        preprocessing = spec.preprocessing(input_size=config.input_size, in_channels=config.in_channels)
    preprocessing = _override_stats(preprocessing, mean, std)
    return SourceModel(name=name, preprocessing=preprocessing, module=module.eval(), config=config,
                       weights=weights_record, pruned_shapes=pruned_shapes, classes=classes)


def _given_or(value, default):
    return default if value is None else value


def _override_stats(preprocessing: Preprocessing, mean, std) -> Preprocessing:
    if mean is None and std is None:
        return preprocessing
    try:
        return Preprocessing(input_size=preprocessing.input_size, channels=preprocessing.channels,
                             mean=tuple(mean or preprocessing.mean), std=tuple(std or preprocessing.std),
                             resize=preprocessing.resize, derived=preprocessing.derived)
    except ValueError as error:
        raise EdgekitError(f"--mean/--std: {error}") from None


def _onnx_source(path: Path, *, input_size, mean, std) -> SourceModel:
    import onnx

    if not path.exists():
        raise EdgekitError(f"ONNX model {path} does not exist")
    if not path.is_file():
        raise EdgekitError(f"ONNX model {path} is not a file")
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as error:  # protobuf DecodeError, ValidationError, ...
        raise EdgekitError(f"{path} is not a valid ONNX model (corrupt or truncated file?)") from error
    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise EdgekitError(f"{path.name} has {len(inputs)} inputs; edgekit handles single-image-input CNNs")
    tensor_type = inputs[0].type.tensor_type
    if tensor_type.elem_type != onnx.TensorProto.FLOAT:
        found = onnx.TensorProto.DataType.Name(tensor_type.elem_type).lower() if tensor_type.elem_type else "no type"
        raise EdgekitError(f"{path.name} input {inputs[0].name!r} is {found}; edgekit feeds float32 images")
    outputs = list(proto.graph.output)
    if not outputs or outputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise EdgekitError(f"{path.name}: its first output must be float32 logits")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if len(dims) != 4:
        raise EdgekitError(f"{path.name} input {inputs[0].name!r} has rank {len(dims)}, expected NCHW (rank 4)")
    channels, height, width = dims[1:]
    if channels not in (1, 3):
        raise EdgekitError(f"{path.name} input has {channels} channels; expected 1 (grayscale) or 3 (RGB) in NCHW")
    if height is None or width is None:
        if input_size is None:
            raise EdgekitError(f"{path.name} has a dynamic image size: pass --input-size")
        height = width = input_size
    elif input_size is not None and (height, width) != (input_size, input_size):
        raise EdgekitError(f"wrong input shape: --input-size {input_size} but {path.name} expects {height}x{width}")
    ort_session(path)  # fails here, with the op's name, if ONNX Runtime cannot run the graph
    default_mean = IMAGENET_MEAN if channels == 3 else (sum(IMAGENET_MEAN) / 3,)
    default_std = IMAGENET_STD if channels == 3 else (sum(IMAGENET_STD) / 3,)
    try:
        preprocessing = Preprocessing(input_size=(height, width), channels=channels,
                                      mean=tuple(mean or default_mean), std=tuple(std or default_std))
    except ValueError as error:
        raise EdgekitError(str(error)) from None
    logits = outputs[0].type.tensor_type.shape.dim
    fixed = logits[-1].dim_value if len(logits) and logits[-1].HasField("dim_value") else None
    return SourceModel(name=path.stem, preprocessing=preprocessing, onnx_path=path, onnx_outputs=fixed)
