"""`edgekit bench`'s presenters: the terminal table (rich) and the flat CSV (benchmark.markdown and
benchmark.plot reuse the columns and cell texts)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from rich import box
from rich.console import Console
from rich.table import Table

from edgekit.benchmark.rows import BenchRow, report_rows

COLUMNS = [
    ("file", "model file"), ("runtime", "runtime"), ("precision", "prec"), ("size_mb", "MB"),
    ("p50", "p50 ms"), ("p90", "p90 ms"), ("p99", "p99 ms"), ("mean", "mean ms"),
    ("throughput_ips", "img/s"), ("speedup_vs_fp32", "vs fp32"), ("speedup_vs_ort_fp32", "vs ORT fp32"), ("peak_rss_mb", "RSS MB"),
    ("top1", "top-1"), ("agreement_with_fp32", "agree"), ("int8_kernels", "int8 arith"),
]
LEFT = ("file", "runtime", "precision")
LATENCY_COLUMNS = ("p50", "p90", "p99", "mean")  # of the row's latency_ms; every other column is a row field
MIN_WIDTH = 175  # the table's natural width; narrower consoles (and pipes, 80) would truncate cells


def flatten(row: BenchRow) -> dict:
    """The row's cells by column key, plus its error."""
    flat = {}
    for key, _ in COLUMNS:
        source = row.latency_ms if key in LATENCY_COLUMNS else row
        flat[key] = getattr(source, key) if source is not None else None
    flat["error"] = row.error
    return flat


def cell_text(key: str, value) -> str:
    """A bench table cell as shown (terminal and Markdown): percentages, speed-ups, rounded numbers."""
    if value is None:
        return "-"
    if key in ("top1", "agreement_with_fp32"):
        return f"{100 * value:.2f}%"
    if key.startswith("speedup"):
        return f"{value:.2f}x"
    if key == "peak_rss_mb" or key == "throughput_ips":
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


def host_line(host: dict) -> str:
    where = f"{host['cpu']}, {host.get('os')}"
    return f"board {host['board']} ({where})" if host.get("board") else where


def print_bench_table(report: dict, console: Console | None = None) -> None:
    if console is None:
        console = Console()
        console = Console(width=max(console.width, MIN_WIDTH))
    settings = report["settings"]
    host = report["host"]
    table = Table(title=f"edgekit bench: {report['model']} for {report['target']} "
                        f"(batch 1, {settings['threads']} threads, {settings['runs']} runs) on {host_line(host)}",
                  box=box.SIMPLE_HEAD)
    for key, title in COLUMNS:
        table.add_column(title, justify="left" if key in LEFT else "right", no_wrap=True)
    rows = report_rows(report)
    for row in rows:
        flat = flatten(row)
        if not row.ok:
            table.add_row(flat["file"], flat["runtime"], flat["precision"], cell_text("size_mb", flat["size_mb"]),
                          f"[red]failed: {flat['error']}[/red]", *["-"] * (len(COLUMNS) - 5))
            continue
        table.add_row(*[cell_text(key, flat[key]) for key, _ in COLUMNS])
    console.print(table)
    if any(row.int8_kernels == SATURATING for row in rows):
        console.print(SATURATING_NOTE)


SATURATING = "may saturate"
SATURATING_NOTE = ("int8 arith 'may saturate': this CPU has no VNNI and the row ran ONNX Runtime's default u8 x s8 "
                   "kernels, as its plan chose; session.x64quantprecision=1 runs the exact int8 arithmetic, slower")


CSV_FIELDS = ["model", "target", *(key for key, _ in COLUMNS), "error"]


def csv_text(report: dict) -> str:
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in report_rows(report):
        writer.writerow({"model": report["model"], "target": report["target"], **flatten(row)})
    return handle.getvalue()


def is_bench_csv(path: Path) -> bool:
    """A CSV this module wrote (its header line), so `bench --csv` may replace it."""
    try:
        with path.open(newline="") as handle:
            return next(csv.reader(handle), None) == CSV_FIELDS
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
