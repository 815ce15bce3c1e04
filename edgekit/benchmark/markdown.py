"""``edgekit bench --report FILE.md``: the bench table as Markdown, with where it was measured, the versions
that measured it and what the artifact recommends, for people who read a report rather than a terminal.

A presenter only: it reads a finished bench report (``edgekit.benchmark.run``), never measures.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.benchmark.rows import report_rows
from edgekit.benchmark.table import (
    COLUMNS,
    LEFT,
    SATURATING,
    SATURATING_NOTE,
    cell_text,
    flatten,
)

# The first line of every report edgekit writes: how `--report` recognises a file it may replace.
MARKER = "<!-- edgekit.bench-report/1: written by `edgekit bench --report`; a rerun may replace this file -->"


def _escape(text) -> str:
    """One Markdown table cell: a `|` would end it, a newline would end the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]], right: list[bool]) -> list[str]:
    lines = ["| " + " | ".join(_escape(h) for h in header) + " |",
             "|" + "".join("---:|" if r else "---|" for r in right)]
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]
    return lines


def _result_rows(report: dict) -> list[list[str]]:
    rows = []
    for row in report_rows(report):
        flat = flatten(row)
        if row.ok:
            rows.append([cell_text(key, flat[key]) for key, _ in COLUMNS])
        else:  # the failure in the p50 column, as the terminal table shows it
            rows.append([flat["file"], flat["runtime"], flat["precision"], cell_text("size_mb", flat["size_mb"]),
                         f"failed: {flat['error']}", *["-"] * (len(COLUMNS) - 5)])
    return rows


def _measured_how(report: dict) -> str:
    settings = report["settings"]
    how = (f"Batch 1, {settings['threads']} threads, {settings['runs']} timed runs after {settings['warmup']} "
           "warm-up runs, each model in a fresh process.")
    if settings.get("eval_images"):
        source = f" from `{settings['data']}`" if settings.get("data") else ""
        how += f" Top-1 and agreement on {settings['eval_images']} labelled images{source}."
    else:
        how += " No evaluation data (`--data`): latency, memory and size only."
    return how


def _recommendation(report: dict) -> list[str]:
    recommended = report.get("recommendation") or {}
    lines = ["## Recommendation", ""]
    if recommended.get("model"):
        lines.append(f"The artifact recommends **`{recommended['model']}`** for deployment"
                     + (f": {recommended['reason']}." if recommended.get("reason") else "."))
    else:
        lines.append("The artifact's manifest names no recommended model.")
    plan = recommended.get("plan")
    if plan is None:
        lines += ["", "Its int8 model was made with the target's fixed recipe (built without `--max-drop`)."]
        return lines
    lines += ["", f"The int8 planner (`--max-drop {plan['max_drop']:g}`, {plan['metric']}, objective "
                  f"{plan['objective']}; fp32 {plan['baseline_accuracy']:.2f}%) considered {plan['candidates']} "
                  f"candidates and shipped **{plan['chosen']}**: {plan['reason']}."]
    candidate = plan.get("candidate")
    if candidate and candidate.get("status") == "tried":
        settings = ", ".join(f"{k}={v}" for k, v in candidate["settings"].items() if k != "fallback_nodes") or "-"
        p50 = f"{candidate['p50_ms']:.3f} ms" if candidate.get("p50_ms") is not None else "not measured"
        lines += ["", *_table(["chosen plan", "precision", "settings", "accuracy %", "drop (points)", "p50 ms",
                               "size MB"],
                              [[candidate["name"], candidate["precision"], settings, f"{candidate['accuracy']:.2f}",
                                f"{candidate['drop']:+.2f}", p50, f"{candidate['size_bytes'] / 1e6:.2f}"]],
                              [False, False, False, True, True, True, True])]
    lines += ["", "Every candidate the planner measured is in the artifact's `REPORT.md`."]
    return lines


def _host(report: dict) -> list[str]:
    host = report["host"]
    where = f"board `{host['board']}` (over SSH)" if host.get("board") else "this host"
    features = ", ".join(host.get("int8_features") or []) or "none"
    lines = ["## Host", "",
             f"- Measured on: {where}",
             f"- CPU: {host.get('cpu')} ({host.get('arch')}), {host.get('logical_cores')} logical cores",
             f"- OS: {host.get('os')}, kernel {host.get('kernel')}",
             f"- int8 instructions: {features}. {host.get('int8_verdict') or ''}".rstrip()]
    if host.get("ort_session_config"):
        options = ", ".join(f"`{k}={v}`" for k, v in host["ort_session_config"].items())
        lines.append(f"- ONNX Runtime ran with {options}: this CPU has no VNNI, and without it ORT's "
                     "u8 x s8 int8 kernels saturate (edgekit's int8 numbers are the exact kernels' numbers, "
                     "unless a row's int8 arith says otherwise)")
    if any(row.int8_kernels == SATURATING for row in report_rows(report)):
        lines.append(f"- {SATURATING_NOTE}")
    return lines


def _versions(report: dict) -> list[str]:
    versions = report.get("versions") or {}
    rows = [[name, version or "not installed"] for name, version in versions.items()]
    lines = ["## Versions", "", *_table(["package (edgekit's side)", "version"], rows, [False, False])]
    host = report["host"]
    if host.get("board"):
        lines += ["", f"On the board: ONNX Runtime {host.get('onnxruntime')}, numpy {host.get('numpy')}, "
                      f"Python {host.get('python')}."]
    return lines


def _legend(report: dict) -> str:
    reference = next((row.reference for row in report_rows(report) if row.reference), None)
    return ("MB: model file size. vs fp32: p50 speed-up over the same runtime's fp32 model. vs ORT fp32: p50 "
            "speed-up over ONNX Runtime fp32. RSS MB: peak resident memory of the measuring process. agree: top-1 "
            "agreement with the fp32 reference" + (f" ({reference})." if reference else "."))


def render_bench_markdown(report: dict) -> str:
    created = f", measured {report['created']}" if report.get("created") else ""
    lines = [MARKER, "", f"# edgekit bench: {report['model']} for {report['target']}", "",
             f"Artifact `{report['artifact']}`{created}. {_measured_how(report)}", "", "## Results", "",
             *_table([title for _, title in COLUMNS], _result_rows(report), [key not in LEFT for key, _ in COLUMNS]),
             "", _legend(report), "", *_recommendation(report), "", *_host(report), "", *_versions(report), ""]
    return "\n".join(lines)


def is_bench_markdown(path: Path) -> bool:
    """A report this module wrote (its first line), so `bench --report` may replace it."""
    try:
        with path.open("rb") as handle:
            return handle.readline(len(MARKER) + 2).rstrip(b"\r\n") == MARKER.encode()
    except OSError:
        return False
