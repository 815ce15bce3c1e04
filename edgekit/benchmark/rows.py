"""One bench result row (a model file in one runtime): what was measured, compared and labelled.

The measurement workers (edgekit.benchmark.worker here, board_runner.py on a board) answer with
JSON, as they must run without edgekit; ``BenchRow.measured`` turns an answer into a row at that
boundary. ``to_dict`` writes the row of the bench report (``results[i]``, the JSON and the Python
API): a key is absent where it does not apply (no ``error`` on a row that ran, no ``top1``
without labelled data), as the report always had it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from edgekit.artifact.codec import Record, read_as


@dataclass(frozen=True, kw_only=True)
class Latency(Record):
    """Batch-1 latency percentiles of the timed runs, in milliseconds."""

    OMIT_DEFAULTS = True

    p50: float
    p90: float
    p99: float
    mean: float
    min: float | None = None


@dataclass(frozen=True, kw_only=True)
class BenchRow(Record):
    """A model file measured in one runtime; ``ok`` False: it failed to run, and ``error`` says why."""

    OMIT_DEFAULTS = True

    file: str
    runtime: str
    precision: str
    size_mb: float
    ok: bool
    error: str | None = None
    # What the worker measured (board_runner.measure).
    runs: int | None = None
    load_s: float | None = None
    latency_ms: Latency | None = None
    throughput_ips: float | None = None
    rss_before_load_mb: float | None = None
    peak_rss_mb: float | None = None
    ort_session_config: Mapping[str, Any] | None = None  # the session config entries ONNX Runtime ran with
    # What bench compared afterwards (edgekit.benchmark.run.add_comparisons, label_int8_arithmetic).
    speedup_vs_fp32: float | None = None
    speedup_vs_ort_fp32: float | None = None
    top1: float | None = None
    agreement_with_fp32: float | None = None
    reference: str | None = None  # the row agreement_with_fp32 is measured against
    int8_kernels: str | None = None
    predictions: tuple[int, ...] | None = None  # output index per evaluation image; not in the report

    @classmethod
    def measured(cls, entry: Mapping[str, Any], result: Mapping[str, Any]) -> BenchRow:
        """A worker's answer (``result``) about a model ``entry`` (file, runtime, precision, size_mb).

        An answer that does not fit the row is that row's error, as a crashed worker's is: the other
        models' numbers still count.
        """
        try:
            return read_as(cls, {**result, **entry})
        except ValueError as error:
            return cls(**entry, ok=False, error=f"unreadable result from the measuring worker: {error}")


def report_rows(report: Mapping[str, Any]) -> tuple[BenchRow, ...]:
    """The rows of a finished bench report (``edgekit.bench``'s dict), for its presenters."""
    return tuple(read_as(BenchRow, row, at=f"results[{index}]") for index, row in enumerate(report["results"]))
