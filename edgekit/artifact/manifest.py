"""The artifact manifest (``manifest.json``, schema ``edgekit.artifact.folder/1``) as declared records.

The build stage creates an :class:`ArtifactManifest`; :mod:`edgekit.artifact.folder` writes it with the
hashes of the folder's files and reads it back through :meth:`ArtifactManifest.from_dict`, which
refuses, in one line naming the first field that does not fit, anything edgekit would not have
written. A manifest is untrusted input (an artifact arrives by copy, download or a shared drive).

The records' type hints, with their ``msgspec.Meta`` constraints, are the schema: msgspec checks a
manifest against them on read (edgekit.artifact.codec), and docs/manifest.schema.json is generated
from them (edgekit.artifact.manifest_schema). What types cannot say (every model file is listed in
``files``, the input shape fits the preprocessing, the class names fit the outputs) is checked after.

Each record writes the keys and nesting of the JSON (old artifacts still read). The board runner
(edgekit/runtimes/board_runner.py) reads the same JSON with literal keys, as it must run without
edgekit; tests/runtimes/test_board_runner.py pins those keys to the field names here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Mapping

from msgspec import Meta

from edgekit.artifact.codec import Record, read_as
from edgekit.artifact.plan_records import QuantizationPlan
from edgekit.artifact.records import (
    ConversionRecord,
    ExportRecord,
    LogitComparison,
    OutputSpec,
    RewriteRecord,
    SimplifyRecord,
    Versions,
)
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
# A relative name inside the artifact: no "", "." or ".." part, no backslash or NUL, not the manifest.
# safe_name_problem says the same in words; tests/artifact/test_manifest_schema.py keeps them equal.
SAFE_NAME = r"^(?!manifest\.json$)(?!\.\.?(?:/|$))[^/\\\x00]+(?:/(?!\.\.?(?:/|$))[^/\\\x00]+)*$"

FileName = Annotated[str, Meta(pattern=SAFE_NAME, description="a relative file name inside the artifact")]
Runtime = Literal[RUNTIMES]
Precision = Literal[PRECISIONS]


@dataclass(frozen=True)
class FileRecord(Record):
    """Size and sha256 of one file of the artifact, as listed in ``files``."""

    sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]
    bytes: Annotated[int, Meta(ge=0)]


@dataclass(frozen=True)
class ModelEntry(Record):
    """One model file of the artifact (``models[i]``) and the companions it reads (.bin, external data)."""

    OMIT_DEFAULTS = True

    file: FileName
    format: str | None = field(default=None, kw_only=True)
    runtime: Runtime
    precision: Precision
    role: str | None = None
    companions: tuple[FileName, ...] = ()
    # ONNX Runtime int8 only: the x86 kernels it was judged with (board_runner.X86_INT8_KERNELS):
    # "exact" asks for session.x64quantprecision=1 on CPUs without VNNI; "ort-default" for none.
    x86_int8_kernels: Literal[X86_INT8_KERNELS] | None = None

    @classmethod
    def of(cls, file: str, runtime: str, precision: str, **extra) -> ModelEntry:
        """An entry as the build writes it: the format follows from the runtime."""
        return cls(file, runtime, precision, format=FORMATS[runtime], **extra)

    @property
    def names(self) -> tuple[str, ...]:
        return (self.file, *self.companions)


@dataclass(frozen=True)
class ModelInfo(Record):
    """Which network this is (``model``): its registry config when it came from edgekit's registry."""

    name: str
    source: Literal["registry", "onnx"] | None = None
    config: ModelConfig | None = None
    weights: Mapping[str, Any] | None = None  # {"path", "sha256"} of the user's weights, if any


@dataclass(frozen=True)
class InputSpec(Record):
    """The model input (``input``); the shape is N, C, H, W."""

    name: str | None = field(default=None, kw_only=True)
    shape: Annotated[tuple[Annotated[int, Meta(gt=0)], ...], Meta(min_length=4, max_length=4,
                                                                 description="N, C, H, W")]
    layout: str | None = field(default=None, kw_only=True)
    dtype: str | None = field(default=None, kw_only=True)
    dynamic_batch: bool | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class TargetRecord(Record):
    """The target profile the artifact was built for (``target``), as recorded at build time."""

    name: str
    description: str | None = field(default=None, kw_only=True)
    arch: str | None = field(default=None, kw_only=True)
    runtime: Literal[backend_runtimes()]
    threads: Annotated[int, Meta(ge=1, le=MAX_THREADS)]
    inference_precision: str | None = None
    int8_dot_product: bool | None = None
    quantization: Mapping[str, Any] = field(default_factory=dict)
    rationale: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_profile(cls, profile) -> TargetRecord:
        """From an edgekit.targets.profiles.Target (the profile as loaded)."""
        return cls(profile.name, description=profile.description, arch=profile.arch, runtime=profile.runtime,
                   threads=profile.threads, inference_precision=profile.inference_precision,
                   int8_dot_product=profile.int8_dot_product, quantization=profile.quantization.to_dict(),
                   rationale=profile.rationale)


@dataclass(frozen=True)
class CalibrationRecord(Record):
    """Which calibration images the int8 model was calibrated on (``quantization.calibration``)."""

    source: str
    images: int
    available: int
    selection: str
    sha256: str
    non_image_files_ignored: int = 0


@dataclass(frozen=True)
class QuantizationRecord(Record):
    """How the int8 model was made (``quantization``), or why none was (``skipped``).

    ``settings`` is the quantizer's own record (backend, format, types, ...) in its order; in the
    JSON its keys sit at the top of the section, beside ``int8_vs_fp32`` (the int8 model's logits
    against fp32's) and ``calibration``.
    """

    settings: Mapping[str, Any] = field(default_factory=dict)
    int8_vs_fp32: LogitComparison | None = None
    calibration: CalibrationRecord | None = None
    skipped: str | None = None

    NESTED = ("int8_vs_fp32", "calibration")

    def to_dict(self) -> dict:
        if self.skipped is not None:
            return {"skipped": self.skipped}
        record = super().to_dict()
        settings = record.pop("settings")
        return {**settings, **{key: record[key] for key in self.NESTED if record[key] is not None}}

    @classmethod
    def declared_shape(cls, section):
        """The JSON section in the shape of this record's fields (settings gathered under ``settings``)."""
        if not isinstance(section, dict) or "skipped" in section:
            return section
        return {"settings": {key: value for key, value in section.items() if key not in cls.NESTED},
                **{key: section[key] for key in cls.NESTED if key in section}}


@dataclass(frozen=True)
class LatencyCheck(Record):
    """The build's short fp32 vs int8 measurement on the build host, or on the board (``latency_check``)."""

    OMIT_DEFAULTS = True

    measured: bool
    reason: str | None = None  # why not measured
    runtime: str | None = None
    threads: int | None = None
    batch: int | None = None
    p50_ms: Mapping[str, float] = field(default_factory=dict)  # precision -> p50 latency
    int8_speedup: float | None = None
    # ``build --host``: the board it was measured on, as ``bench --host`` describes it (None: the build host).
    board: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Int8Tradeoff(Record):
    """What int8 buys (size) and may cost (latency) on a CPU without int8 dot-product (``int8_tradeoff``)."""

    fp32_model: str
    int8_model: str
    fp32_bytes: int
    int8_bytes: int
    size_ratio: float
    latency: str


@dataclass(frozen=True, kw_only=True)
class ArtifactManifest(Record):
    """The whole manifest. ``files`` is filled in by edgekit.artifact.folder.write_manifest."""

    OMIT_DEFAULTS = True  # absent sections stay absent ...
    # ... but "classes": null says no class names were recorded, and "files" is the manifest's point.
    ALWAYS_WRITTEN = frozenset({"schema", "classes", "files"})

    schema: Literal[SCHEMA] = SCHEMA
    created: str | None = None
    model: ModelInfo
    input: InputSpec
    output: OutputSpec | None = None
    classes: tuple[str, ...] | None = None  # output i is classes[i]
    preprocessing: Preprocessing
    target: TargetRecord
    versions: Versions | None = None
    # The CPU every number of the build was measured on (edgekit.targets.isa.build_host_record).
    build_host: Mapping[str, Any] | None = None
    models: Annotated[tuple[ModelEntry, ...], Meta(min_length=1)]
    export: ExportRecord | None = None
    simplify: SimplifyRecord | None = None
    rewrite: RewriteRecord | None = None
    conversion: ConversionRecord | None = None
    quantization: QuantizationRecord | None = None
    quantization_plan: QuantizationPlan | None = None
    latency_check: LatencyCheck | None = None
    int8_tradeoff: Int8Tradeoff | None = None
    recommended_model: str | None = None
    recommendation_reason: str | None = None
    files: Annotated[Mapping[FileName, FileRecord], Meta(min_length=1)] = field(default_factory=dict)

    def models_for(self, runtime: str) -> tuple[ModelEntry, ...]:
        return tuple(entry for entry in self.models if entry.runtime == runtime)

    @classmethod
    def from_dict(cls, record: Any, *, where: str = MANIFEST) -> ArtifactManifest:
        """The validated manifest; ``where`` (its path) starts the one-line error."""
        if not isinstance(record, dict):
            raise EdgekitError(f"{where} is not a valid edgekit manifest: expected an object")
        if record.get("schema") != SCHEMA:
            raise EdgekitError(f"{where} has schema {record.get('schema')!r}, expected {SCHEMA!r}")
        try:
            problem = _files_problem(record.get("files"))
            manifest = None if problem else read_as(
                cls, {**record, "quantization": QuantizationRecord.declared_shape(record.get("quantization"))})
        except ValueError as error:
            problem = str(error)
        except EdgekitError as error:  # the only record that raises it: ModelConfig, of the models room
            problem = f"model.config: {error}"
        problem = problem or _cross_field_problem(manifest)
        if problem:
            raise EdgekitError(f"{where} is not a valid edgekit manifest: {problem}")
        return manifest


# ---- what the types cannot say --------------------------------------------------------------------

def _files_problem(files) -> str | None:
    """First, and in words: a manifest that lists a file edgekit must not read is refused as such."""
    if not isinstance(files, dict) or not files:
        return "'files' must be an object of file name -> {sha256, bytes}"
    for name, record in files.items():
        problem = safe_name_problem(name)
        if problem:
            return f"files[{name!r}]: {problem}"
        read_as(FileRecord, record, at=f"files[{name!r}]")
    return None


def safe_name_problem(name) -> str | None:
    """Why ``name`` may not name a file of the artifact, or None (SAFE_NAME is the same rule)."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name or name.startswith("/"):
        return "not a relative file name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "names a path outside the artifact or an unusual path"
    if name == MANIFEST:
        return "the manifest cannot list itself"
    return None


def _cross_field_problem(manifest: ArtifactManifest) -> str | None:
    for index, entry in enumerate(manifest.models):
        for name in entry.names:
            if name not in manifest.files:
                return f"models[{index}] names {name!r}, which 'files' does not list (and hash)"
    shape, expected = manifest.input.shape, manifest.preprocessing.input_shape
    if shape[1:] != expected[1:]:
        return f"input.shape {list(shape)} does not match the preprocessing ({list(expected[1:])})"
    if manifest.classes is not None:
        config = manifest.model.config
        return class_names_problem(manifest.classes, config.num_classes if config else None)
    return None
