"""The artifact manifest (``manifest.json``, schema ``edgekit.artifact.folder/1``) as typed records.

The build stage creates an :class:`ArtifactManifest`; :mod:`edgekit.artifact.folder` writes it with the
hashes of the folder's files and reads it back through :meth:`ArtifactManifest.from_dict`, which
refuses, in one line naming the first field that does not fit, anything edgekit would not have
written. A manifest is untrusted input (an artifact arrives by copy, download or a shared drive).

Each record's ``to_dict`` writes the keys and nesting of the JSON (old artifacts still read). The
records of what a stage measured and nobody relies on for safety (``export``, ``simplify``,
``conversion``, ``versions``, ``output``, the logit comparisons) stay the dicts that stage produced.
The board runner (edgekit/runtimes/board_runner.py) reads the same JSON with literal keys, as it must run
without edgekit; tests/runtimes/test_board_runner.py pins those keys to the field names here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from edgekit.artifact.plan_records import QuantizationPlan
from edgekit.core.checks import is_integer
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import MANIFEST
from edgekit.data.preprocessing import Preprocessing
from edgekit.models._registry import ModelConfig
from edgekit.models.weights import class_names_problem
from edgekit.runtimes.board_runner import X86_INT8_KERNELS
from edgekit.runtimes.names import backend_runtimes, known_runtimes

SCHEMA = "edgekit.artifact.folder/1"
RUNTIMES = known_runtimes()  # pytorch (the reference) and one per edgekit/backends/ module
PRECISIONS = ("fp32", "int8")
FORMATS = {"pytorch": "pytorch-state-dict", "onnxruntime": "onnx", "openvino": "openvino-ir"}
MAX_THREADS = 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _frozen(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class FileRecord:
    """Size and sha256 of one file of the artifact, as listed in ``files``."""

    sha256: str
    bytes: int

    def to_dict(self) -> dict:
        return {"sha256": self.sha256, "bytes": self.bytes}

    @classmethod
    def from_dict(cls, record: dict) -> FileRecord:
        return cls(record["sha256"], record["bytes"])


@dataclass(frozen=True)
class ModelEntry:
    """One model file of the artifact (``models[i]``) and the companions it reads (.bin, external data)."""

    file: str
    runtime: str
    precision: str
    format: str | None = None
    role: str | None = None
    companions: tuple[str, ...] = ()
    # ONNX Runtime int8 only: the x86 kernels it was judged with (board_runner.X86_INT8_KERNELS):
    # "exact" asks for session.x64quantprecision=1 on CPUs without VNNI; "ort-default" for none.
    x86_int8_kernels: str | None = None

    @classmethod
    def of(cls, file: str, runtime: str, precision: str, **extra) -> ModelEntry:
        """An entry as the build writes it: the format follows from the runtime."""
        return cls(file, runtime, precision, format=FORMATS[runtime], **extra)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.file, *self.companions)

    def to_dict(self) -> dict:
        record = {"file": self.file, "format": self.format, "runtime": self.runtime, "precision": self.precision}
        if self.format is None:
            del record["format"]
        if self.role is not None:
            record["role"] = self.role
        if self.companions:
            record["companions"] = list(self.companions)
        if self.x86_int8_kernels is not None:
            record["x86_int8_kernels"] = self.x86_int8_kernels
        return record

    @classmethod
    def from_dict(cls, record: dict) -> ModelEntry:
        return cls(record["file"], record["runtime"], record["precision"], format=record.get("format"),
                   role=record.get("role"), companions=tuple(record.get("companions", ())),
                   x86_int8_kernels=record.get("x86_int8_kernels"))


@dataclass(frozen=True)
class ModelInfo:
    """Which network this is (``model``): its registry config when it came from edgekit's registry."""

    name: str
    source: str | None = None  # "registry" or "onnx"
    config: ModelConfig | None = None
    weights: Mapping | None = None  # {"path", "sha256"} of the user's weights, if any

    def to_dict(self) -> dict:
        return {"name": self.name, "source": self.source,
                "config": self.config.to_dict() if self.config else None, "weights": self.weights}

    @classmethod
    def from_dict(cls, record: dict) -> ModelInfo:
        config = record.get("config")
        return cls(record["name"], record.get("source"), ModelConfig.from_dict(config) if config is not None else None,
                   record.get("weights"))


@dataclass(frozen=True)
class InputSpec:
    """The model input (``input``); the shape is N, C, H, W."""

    shape: tuple[int, ...]
    name: str | None = None
    layout: str | None = None
    dtype: str | None = None
    dynamic_batch: bool | None = None

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "layout": self.layout, "dtype": self.dtype,
                "dynamic_batch": self.dynamic_batch}

    @classmethod
    def from_dict(cls, record: dict) -> InputSpec:
        return cls(tuple(record["shape"]), record.get("name"), record.get("layout"), record.get("dtype"),
                   record.get("dynamic_batch"))


@dataclass(frozen=True)
class TargetRecord:
    """The target profile the artifact was built for (``target``), as recorded at build time."""

    name: str
    runtime: str
    threads: int
    description: str | None = None
    arch: str | None = None
    inference_precision: str | None = None
    int8_dot_product: bool | None = None
    quantization: Mapping = field(default_factory=dict)
    rationale: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "quantization", _frozen(self.quantization))
        object.__setattr__(self, "rationale", _frozen(self.rationale))

    @classmethod
    def from_profile(cls, profile) -> TargetRecord:
        """From an edgekit.targets.profiles.Target (the profile as loaded)."""
        return cls(profile.name, profile.runtime, profile.threads, profile.description, profile.arch,
                   profile.inference_precision, profile.int8_dot_product, profile.quantization.to_dict(),
                   profile.rationale)

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "arch": self.arch, "runtime": self.runtime,
                "threads": self.threads, "inference_precision": self.inference_precision,
                "int8_dot_product": self.int8_dot_product, "quantization": dict(self.quantization),
                "rationale": dict(self.rationale)}

    @classmethod
    def from_dict(cls, record: dict) -> TargetRecord:
        return cls(record["name"], record["runtime"], record["threads"], record.get("description"),
                   record.get("arch"), record.get("inference_precision"), record.get("int8_dot_product"),
                   record.get("quantization") or {}, record.get("rationale") or {})


@dataclass(frozen=True)
class CalibrationRecord:
    """Which calibration images the int8 model was calibrated on (``quantization.calibration``)."""

    source: str
    images: int
    available: int
    selection: str
    sha256: str
    non_image_files_ignored: int = 0

    def to_dict(self) -> dict:
        return {"source": self.source, "images": self.images, "available": self.available,
                "selection": self.selection, "sha256": self.sha256,
                "non_image_files_ignored": self.non_image_files_ignored}

    @classmethod
    def from_dict(cls, record: dict) -> CalibrationRecord:
        return cls(record.get("source"), record.get("images"), record.get("available"), record.get("selection"),
                   record.get("sha256"), record.get("non_image_files_ignored", 0))


@dataclass(frozen=True)
class QuantizationRecord:
    """How the int8 model was made (``quantization``), or why none was (``skipped``).

    ``settings`` is the quantizer's own record (backend, format, types, ...) in its order;
    ``int8_vs_fp32`` is runtimes.compare.compare_logits' comparison on the calibration images.
    """

    settings: Mapping = field(default_factory=dict)
    int8_vs_fp32: Mapping | None = None
    calibration: CalibrationRecord | None = None
    skipped: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", _frozen(self.settings))
        if self.int8_vs_fp32 is not None:
            object.__setattr__(self, "int8_vs_fp32", _frozen(self.int8_vs_fp32))

    def to_dict(self) -> dict:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        record = dict(self.settings)
        if self.int8_vs_fp32 is not None:
            record["int8_vs_fp32"] = dict(self.int8_vs_fp32)
        if self.calibration is not None:
            record["calibration"] = self.calibration.to_dict()
        return record

    @classmethod
    def from_dict(cls, record: dict) -> QuantizationRecord:
        if "skipped" in record:
            return cls(skipped=record["skipped"])
        calibration = record.get("calibration")
        return cls({k: v for k, v in record.items() if k not in ("int8_vs_fp32", "calibration")},
                   record.get("int8_vs_fp32"),
                   CalibrationRecord.from_dict(calibration) if isinstance(calibration, dict) else None)


@dataclass(frozen=True)
class LatencyCheck:
    """The build's short fp32 vs int8 measurement on the build host (``latency_check``)."""

    measured: bool
    reason: str | None = None  # why not measured
    runtime: str | None = None
    threads: int | None = None
    batch: int | None = None
    p50_ms: Mapping = field(default_factory=dict)  # precision -> p50 latency
    int8_speedup: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "p50_ms", _frozen(self.p50_ms))

    def to_dict(self) -> dict:
        if not self.measured:
            return {"measured": False, "reason": self.reason}
        record = {"measured": True, "runtime": self.runtime, "threads": self.threads, "batch": self.batch,
                  "p50_ms": dict(self.p50_ms)}
        if self.int8_speedup is not None:
            record["int8_speedup"] = self.int8_speedup
        return record

    @classmethod
    def from_dict(cls, record: dict) -> LatencyCheck:
        return cls(bool(record.get("measured")), record.get("reason"), record.get("runtime"), record.get("threads"),
                   record.get("batch"), record.get("p50_ms") or {}, record.get("int8_speedup"))


@dataclass(frozen=True)
class Int8Tradeoff:
    """What int8 buys (size) and may cost (latency) on a CPU without int8 dot-product (``int8_tradeoff``)."""

    fp32_model: str
    int8_model: str
    fp32_bytes: int
    int8_bytes: int
    size_ratio: float
    latency: str

    def to_dict(self) -> dict:
        return {"fp32_model": self.fp32_model, "int8_model": self.int8_model, "fp32_bytes": self.fp32_bytes,
                "int8_bytes": self.int8_bytes, "size_ratio": self.size_ratio, "latency": self.latency}

    @classmethod
    def from_dict(cls, record: dict) -> Int8Tradeoff:
        return cls(record.get("fp32_model"), record.get("int8_model"), record.get("fp32_bytes"),
                   record.get("int8_bytes"), record.get("size_ratio"), record.get("latency"))


def _section(record: dict, key: str, kind):
    """A section the schema never checked: typed when it is an object, else read as absent (no reader
    relies on it for safety, and refusing it now would refuse artifacts that bench reads today)."""
    value = record.get(key)
    return kind.from_dict(value) if isinstance(value, dict) else None


@dataclass(frozen=True)
class ArtifactManifest:
    """The whole manifest. ``files`` is filled in by edgekit.artifact.folder.write_manifest."""

    model: ModelInfo
    input: InputSpec
    preprocessing: Preprocessing
    target: TargetRecord
    models: tuple[ModelEntry, ...]
    classes: tuple[str, ...] | None = None  # output i is classes[i]
    created: str | None = None
    output: Any = None
    versions: Any = None
    build_host: Any = None  # the CPU every number of the build was measured on (isa.build_host_record)
    export: Any = None
    simplify: Any = None
    conversion: Any = None
    quantization: QuantizationRecord | None = None
    quantization_plan: QuantizationPlan | None = None
    latency_check: LatencyCheck | None = None
    int8_tradeoff: Int8Tradeoff | None = None
    recommended_model: str | None = None
    recommendation_reason: str | None = None
    files: Mapping[str, FileRecord] = field(default_factory=dict)

    schema = SCHEMA

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "files", _frozen(self.files))
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(self.classes))

    def models_for(self, runtime: str) -> tuple[ModelEntry, ...]:
        return tuple(entry for entry in self.models if entry.runtime == runtime)

    def to_dict(self) -> dict:
        def plain(value):
            return value.to_dict() if hasattr(value, "to_dict") else value

        record = {"schema": SCHEMA, "created": self.created, "model": self.model.to_dict(),
                  "input": self.input.to_dict(), "output": self.output,
                  "classes": list(self.classes) if self.classes is not None else None,
                  "preprocessing": self.preprocessing.to_dict(), "target": self.target.to_dict(),
                  "versions": self.versions, "build_host": self.build_host,
                  "models": [entry.to_dict() for entry in self.models],
                  "export": self.export, "simplify": self.simplify, "conversion": self.conversion,
                  "quantization": plain(self.quantization), "quantization_plan": plain(self.quantization_plan),
                  "latency_check": plain(self.latency_check),
                  "int8_tradeoff": plain(self.int8_tradeoff), "recommended_model": self.recommended_model,
                  "recommendation_reason": self.recommendation_reason,
                  "files": {name: item.to_dict() for name, item in self.files.items()}}
        # Absent sections stay absent; "classes": null is kept, it says no class names were recorded.
        return {key: value for key, value in record.items() if value is not None or key == "classes"}

    @classmethod
    def from_dict(cls, record: dict, *, where: str = MANIFEST) -> ArtifactManifest:
        """The validated manifest; ``where`` (its path) starts the one-line error."""
        if record.get("schema") != SCHEMA:
            raise EdgekitError(f"{where} has schema {record.get('schema')!r}, expected {SCHEMA!r}")
        validate_manifest(record, where)
        classes = record.get("classes")
        return cls(
            model=ModelInfo.from_dict(record["model"]), input=InputSpec.from_dict(record["input"]),
            preprocessing=Preprocessing.from_dict(record["preprocessing"]),
            target=TargetRecord.from_dict(record["target"]),
            models=tuple(ModelEntry.from_dict(entry) for entry in record["models"]),
            classes=tuple(classes) if classes is not None else None, created=record.get("created"),
            output=record.get("output"), versions=record.get("versions"), build_host=record.get("build_host"),
            export=record.get("export"),
            simplify=record.get("simplify"), conversion=record.get("conversion"),
            quantization=_section(record, "quantization", QuantizationRecord),
            quantization_plan=_section(record, "quantization_plan", QuantizationPlan),
            latency_check=_section(record, "latency_check", LatencyCheck),
            int8_tradeoff=_section(record, "int8_tradeoff", Int8Tradeoff),
            recommended_model=record.get("recommended_model"),
            recommendation_reason=record.get("recommendation_reason"),
            files={name: FileRecord.from_dict(item) for name, item in record["files"].items()})


# ---- the schema checks ----------------------------------------------------------------------------

def validate_manifest(manifest: dict, where) -> None:
    """One-line error naming the first field that does not fit the artifact schema."""
    problem = _manifest_problem(manifest)
    if problem:
        raise EdgekitError(f"{where} is not a valid edgekit manifest: {problem}")


def _manifest_problem(manifest: dict) -> str | None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "'files' must be an object of file name -> {sha256, bytes}"
    for name, record in files.items():
        problem = safe_name_problem(name) or _file_record_problem(record)
        if problem:
            return f"files[{name!r}]: {problem}"
    for check in (_models_problem, _input_problem, _target_problem, _model_problem):
        problem = check(manifest)
        if problem:
            return problem
    return None


def safe_name_problem(name) -> str | None:
    """Why ``name`` may not name a file of the artifact, or None."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name or name.startswith("/"):
        return "not a relative file name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "names a path outside the artifact or an unusual path"
    if name == MANIFEST:
        return "the manifest cannot list itself"
    return None


def _file_record_problem(record) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str) \
            or not _SHA256.match(record["sha256"]):
        return "needs a 64-hex-digit 'sha256'"
    if not is_integer(record.get("bytes")) or record["bytes"] < 0:
        return "needs a non-negative integer 'bytes'"
    return None


def _models_problem(manifest: dict) -> str | None:
    models = manifest.get("models")
    if not isinstance(models, list) or not models:
        return "'models' must be a non-empty list"
    for index, entry in enumerate(models):
        where = f"models[{index}]"
        if not isinstance(entry, dict):
            return f"{where} is not an object"
        if entry.get("runtime") not in RUNTIMES:
            return f"{where}.runtime must be one of {', '.join(RUNTIMES)}"
        if entry.get("precision") not in PRECISIONS:
            return f"{where}.precision must be one of {', '.join(PRECISIONS)}"
        companions = entry.get("companions", [])
        if not isinstance(companions, list):
            return f"{where}.companions must be a list"
        if entry.get("x86_int8_kernels") not in (None, *X86_INT8_KERNELS):
            return f"{where}.x86_int8_kernels must be one of {', '.join(X86_INT8_KERNELS)}"
        for name in [entry.get("file"), *companions]:
            if not isinstance(name, str) or name not in manifest["files"]:
                return f"{where} names {name!r}, which 'files' does not list (and hash)"
    return None


def _input_problem(manifest: dict) -> str | None:
    shape = (manifest.get("input") or {}).get("shape") if isinstance(manifest.get("input"), dict) else None
    if not isinstance(shape, list) or len(shape) != 4 or not all(is_integer(v) and v > 0 for v in shape):
        return "input.shape must be four positive integers (N, C, H, W)"
    record = manifest.get("preprocessing")
    if not isinstance(record, dict):
        return "'preprocessing' must be an object"
    try:
        preprocessing = Preprocessing.from_dict(record)
    except (ValueError, TypeError, KeyError) as error:
        return f"preprocessing: {error}"
    if tuple(shape[1:]) != preprocessing.input_shape[1:]:
        return f"input.shape {shape} does not match the preprocessing ({list(preprocessing.input_shape[1:])})"
    return None


def _target_problem(manifest: dict) -> str | None:
    target = manifest.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        return "'target' must be an object with a 'name'"
    threads = target.get("threads")
    if not is_integer(threads) or not 1 <= threads <= MAX_THREADS:
        return f"target.threads must be an integer from 1 to {MAX_THREADS}"
    if target.get("runtime") not in backend_runtimes():
        return f"target.runtime must be one of {', '.join(backend_runtimes())}"
    if target.get("inference_precision") is not None and not isinstance(target["inference_precision"], str):
        return "target.inference_precision must be a string"
    return None


def _model_problem(manifest: dict) -> str | None:
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return "'model' must be an object with a 'name'"
    config = None
    if model.get("config") is not None:
        try:
            config = ModelConfig.from_dict(model["config"])
        except EdgekitError as error:
            return f"model.config: {error}"
    if manifest.get("classes") is not None:
        return class_names_problem(manifest["classes"], config.num_classes if config else None)
    return None
