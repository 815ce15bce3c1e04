"""REPORT.md embeds the int8 planner's whole candidate table: every candidate a row, the shipped one bold."""

from __future__ import annotations

import dataclasses

from edgekit.artifact.plan_records import SKIPPED, PlanCandidate, QuantizationPlan
from edgekit.builder.report import render_report
from edgekit.quantize.plan.table import PLAN_COLUMNS, render_plan
from tests.benchmark.test_bench_report import _cells


def _plan() -> QuantizationPlan:
    int8 = {"precision": "int8", "p50_ms": 0.05, "size_bytes": 120_000, "seconds": 3.0}
    return QuantizationPlan(
        objective="latency", max_drop=1.0, metric="top-1 accuracy on --val", baseline_accuracy=97.0,
        evaluation={"images": 200, "source": "val", "selection": "all of --val"}, latency="measured here",
        budget_seconds=60, spent_seconds=31,
        candidates=(PlanCandidate("fixed", settings={"calibration": "minmax"}, accuracy=95.0, drop=2.0,
                                  within_budget=False, **int8),
                    PlanCandidate("moving-average", settings={"calibration": "minmax", "moving_average": True},
                                  accuracy=96.5, drop=0.5, within_budget=True, **int8),
                    PlanCandidate("entropy", "int8", status=f"{SKIPPED} (budget)"),
                    PlanCandidate("fp32", "fp32", accuracy=97.0, drop=0.0, p50_ms=0.1, size_bytes=480_000,
                                  within_budget=True)),
        chosen="moving-average", reason="the fastest plan within 1 point")


def _plan_table(lines: list[str]) -> list[list[str]]:
    return [_cells(line) for line in lines if line.startswith("| ")]


def test_the_plan_table_has_every_candidate():
    header, *rows = _plan_table(render_plan(_plan()))
    assert header == list(PLAN_COLUMNS)
    by_name = {row[0]: dict(zip(header, row)) for row in rows}
    assert list(by_name) == ["fixed", "**moving-average**", "entropy", "fp32"]
    assert by_name["fixed"]["drop (points)"] == "+2.00" and by_name["fixed"]["within budget"] == "no"
    assert by_name["entropy"]["accuracy %"] == "-" and by_name["entropy"]["within budget"] == "not tried (budget)"
    assert by_name["**moving-average**"]["settings"] == "calibration=minmax, moving_average=True"


def test_report_md_embeds_the_plan_table(cpu_artifact):
    from edgekit.artifact.folder import read_manifest

    manifest = dataclasses.replace(read_manifest(cpu_artifact), quantization_plan=_plan())
    report = render_report(manifest)
    section = report.split("## int8 plan (`--max-drop`)\n", 1)[1]
    assert _plan_table(section.splitlines()) == _plan_table(render_plan(_plan()))
    assert "**Shipped: moving-average** (the fastest plan within 1 point)." in section
    assert "## int8 plan" not in render_report(read_manifest(cpu_artifact))  # no plan, no table
