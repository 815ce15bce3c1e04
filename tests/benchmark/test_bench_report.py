"""`bench --report`'s Markdown, parsed back: the table has every row and column, the host, versions and
the recommendation are there, and a cell's `|` or newline cannot break the table."""

from __future__ import annotations

import re

from edgekit.benchmark.markdown import MARKER, is_bench_markdown, render_bench_markdown
from edgekit.benchmark.table import COLUMNS
from tests.bench_samples import sample_report


def _cells(line: str) -> list[str]:
    """A Markdown table row split at unescaped pipes, cells trimmed and unescaped."""
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [part.strip().replace("\\|", "|") for part in parts]


def _tables(markdown: str) -> dict[str, list[list[str]]]:
    """Each section's (## title) first table, as rows of cells (the header first, the --- line dropped)."""
    tables, section = {}, None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section = line[3:]
        elif line.startswith("|") and section is not None:
            if not re.fullmatch(r"\|(-+:?\|)+", line):
                tables.setdefault(section, []).append(_cells(line))
    return tables


def _section(markdown: str, title: str) -> str:
    return markdown.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_results_table_has_every_row_and_column():
    report = sample_report(failed=True)
    markdown = render_bench_markdown(report)
    assert markdown.splitlines()[0] == MARKER
    header, *rows = _tables(markdown)["Results"]
    assert header == [title for _, title in COLUMNS]
    assert len(rows) == len(report["results"]) and all(len(row) == len(header) for row in rows)
    by_file = {(row[0], row[1]): dict(zip(header, row)) for row in rows}
    int8 = by_file[("model_int8.onnx", "onnxruntime")]
    assert int8["p50 ms"] == "0.058" and int8["top-1"] == "96.94%" and int8["MB"] == "0.130"
    # The failure's `|` and newline stay inside its cell.
    failed = by_file[("model_int8.onnx", "pytorch")]
    assert failed["p50 ms"] == "failed: RuntimeError: no kernel | for QLinearConv second line"
    assert "359 labelled images from `digits/val`" in markdown


def test_host_versions_and_recommendation_are_reported():
    markdown = render_bench_markdown(sample_report())
    host = _section(markdown, "Host")
    assert "Intel(R) Xeon(R) Platinum 8488C (x86_64), 2 logical cores" in host
    assert "Ubuntu 24.04 LTS" in host and "avx512_vnni" in host
    versions = dict(row for row in _tables(markdown)["Versions"][1:])
    assert {"edgekit", "onnxruntime", "openvino", "torch"} <= set(versions)
    assert versions["openvino"] == "2026.4.1"
    recommendation = _section(markdown, "Recommendation")
    assert "**`model_int8.onnx`**" in recommendation and "agrees with fp32 on 99.2%" in recommendation
    assert "shipped **moving-average**" in recommendation and "the fastest plan within 1 point" in recommendation
    header, chosen = _tables(markdown)["Recommendation"]
    assert dict(zip(header, chosen))["drop (points)"] == "+0.27"


def test_without_a_plan_or_accuracy_it_says_so():
    markdown = render_bench_markdown(sample_report(accuracy=False, plan=False, board="pi@pi4"))
    assert "target's fixed recipe" in _section(markdown, "Recommendation")
    assert "No evaluation data" in markdown
    assert "board `pi@pi4`" in _section(markdown, "Host")
    assert "On the board: ONNX Runtime 1.31.1" in _section(markdown, "Versions")
    header, *rows = _tables(markdown)["Results"]
    assert {dict(zip(header, row))["top-1"] for row in rows} == {"-"}


def test_only_its_own_report_is_recognised(tmp_path):
    mine = tmp_path / "mine.md"
    mine.write_text(render_bench_markdown(sample_report()))
    users = tmp_path / "notes.md"
    users.write_text("# my notes\n" + MARKER + "\n")
    assert is_bench_markdown(mine)
    assert not is_bench_markdown(users) and not is_bench_markdown(tmp_path / "missing.md")
