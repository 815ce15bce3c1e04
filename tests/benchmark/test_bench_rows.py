"""A worker's answer becomes a BenchRow at the boundary and is written back key for key: the bench
report's rows (JSON, CSV, the Python API) keep their format."""

from __future__ import annotations

import json

from edgekit.benchmark.rows import BenchRow, report_rows
from tests.bench_samples import sample_report

ENTRY = {"file": "model_int8.onnx", "runtime": "onnxruntime", "precision": "int8", "size_mb": 0.13}
ANSWER = {"ok": True, "runs": 5, "load_s": 0.02,
          "latency_ms": {"p50": 0.5, "p90": 0.6, "p99": 0.7, "mean": 0.55, "min": 0.4},
          "throughput_ips": 1818.2, "rss_before_load_mb": 40.0, "peak_rss_mb": 61.5, "ort_session_config": {}}


def test_a_measured_row_writes_the_keys_the_report_always_had_in_their_order():
    row = BenchRow.measured(ENTRY, {**ANSWER, "predictions": [1, 0, 3]})
    assert row.latency_ms.p50 == 0.5 and row.predictions == (1, 0, 3)
    written = BenchRow.measured(ENTRY, ANSWER).to_dict()
    assert json.dumps(written) == json.dumps({**ENTRY, **ANSWER})  # "ort_session_config": {} kept: it says none


def test_a_failed_row_has_an_error_and_nothing_measured():
    answer = {"ok": False, "error": "timed out after 600 s"}
    assert BenchRow.measured(ENTRY, answer).to_dict() == {**ENTRY, **answer}


def test_an_answer_that_does_not_fit_is_that_rows_error_not_a_crash():
    row = BenchRow.measured(ENTRY, {**ANSWER, "latency_ms": {"p50": "fast"}})
    assert not row.ok and row.error.startswith("unreadable result from the measuring worker: latency_ms.p50:")


def test_the_presenters_read_a_finished_reports_rows_as_records():
    report = sample_report(failed=True)
    rows = report_rows(report)
    assert [row.to_dict() for row in rows] == report["results"]
    assert rows[-1].error.startswith("RuntimeError") and rows[0].agreement_with_fp32 == 1.0
