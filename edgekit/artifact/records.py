"""What the build's fp32 stages recorded (manifest ``output``, ``export``, ``simplify``, ``rewrite``,
``conversion``) and how two runtimes' logits compared (``export.parity``, ``quantization.int8_vs_fp32``).

Shared by the writers (edgekit.builder.export and .simplify, edgekit.quantize.openvino, the int8
planner) and the readers (REPORT.md, bench): the record, not a dict, is what they agree on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from edgekit.artifact.codec import Record

# {package: version, or None when not installed, ..., "python": version} (edgekit.core.versions)
Versions = Mapping[str, str | None]


@dataclass(frozen=True, kw_only=True)
class OutputSpec(Record):
    """The model output (``output``)."""

    name: str
    meaning: str


@dataclass(frozen=True, kw_only=True)
class LogitComparison(Record):
    """Two models' logits on the same inputs (edgekit.runtimes.compare.compare_logits), and on what.

    Differences are normalised by the reference's largest |logit|. ``tolerance`` and ``passed`` are
    the export parity check's; ``reference`` names the reference when it is not obvious.
    """

    OMIT_DEFAULTS = True

    max_abs_diff: float
    max_normalised_diff: float
    mean_abs_diff: float
    top1_agreement: float
    samples: int
    tolerance: float | None = None
    reference: str | None = None
    inputs: str | None = None
    passed: bool | None = None

    @classmethod
    def of(cls, measured: Mapping, **context) -> LogitComparison:
        """From compare_logits' measures and what they were measured on."""
        return cls(**measured, **context)


@dataclass(frozen=True, kw_only=True)
class ExportRecord(Record):
    """How the fp32 ONNX model was made (``export``): exported from PyTorch, or an ONNX input used as
    given (``exporter`` None, with a ``note``); ``parity`` is its check against the source model."""

    OMIT_DEFAULTS = True
    ALWAYS_WRITTEN = frozenset({"exporter"})  # null says: not exported, given

    exporter: str | None
    opset: int | None = None
    torch: str | None = None
    dynamic_axes: Mapping[str, str] | None = None
    note: str | None = None
    parity: LogitComparison | None = None


@dataclass(frozen=True, kw_only=True)
class SimplifyRecord(Record):
    """The onnxsim pass (``simplify``); not applied (and why) when it failed or its own check did."""

    OMIT_DEFAULTS = True

    tool: str
    version: str
    applied: bool
    reason: str | None = None
    nodes_before: int
    nodes_after: int


@dataclass(frozen=True, kw_only=True)
class GraphRewriteRecord(Record):
    """One exact graph rewrite (edgekit.rewrite): how often it matched, whether it was kept and why not,
    the nodes that looked like its pattern but were left as they are, its fp32 parity with the graph
    before any rewrite, and the fp32 latency before and after it where it was timed."""

    OMIT_DEFAULTS = True

    name: str
    pattern: str
    matches: int
    applied: bool
    reason: str | None = None
    near_misses: tuple[str, ...] = ()
    parity_max_normalised_diff: float | None = None
    fp32_ms_before: float | None = None
    fp32_ms_after: float | None = None


@dataclass(frozen=True, kw_only=True)
class RewriteRecord(Record):
    """The rewrite stage between simplify and quantize (``rewrite``); ``timing`` says where the gains
    were timed, or why they were not."""

    tool: str
    version: str
    parity_tolerance: float
    timing: str
    nodes_before: int
    nodes_after: int
    rewrites: tuple[GraphRewriteRecord, ...]


@dataclass(frozen=True, kw_only=True)
class ConversionRecord(Record):
    """ONNX -> OpenVINO IR (``conversion``)."""

    tool: str
    openvino: str
    weights: str  # "fp32": the IR keeps fp32 weights
