"""``edgekit bench --plot FILE.png``: latency against accuracy and against size, one labelled point per
model file x runtime x precision of a finished bench report.

matplotlib is imported inside the function that draws, and only its object API is used (``Figure`` on
an Agg canvas, never pyplot): no global backend or figure state, no display needed.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

from edgekit.benchmark.rows import BenchRow, report_rows

PLOT_SCHEMA = "edgekit.bench-plot/1"  # a PNG text chunk: how `--plot` recognises a file it may replace
PLOT_KEY = "edgekit"
COLOURS = {"pytorch": "#d62728", "onnxruntime": "#1f77b4", "openvino": "#2ca02c"}
MARKERS = {"fp32": "o", "int8": "s"}
# Offsets (points) tried for a label, nearest first; the first whose text box overlaps no other label,
# no marker and stays inside the panel wins. Beyond the first ring a leader line joins label and point.
_DIRECTIONS = ((1, 1), (1, -1), (-1, 1), (-1, -1), (1, 0), (-1, 0), (0, 1), (0, -1))
_RINGS = (7, 18, 30, 44, 60)


def _metric(points: list[BenchRow]) -> tuple[str, str] | None:
    """(row key, axis title) of the accuracy measure every plotted row has, or None."""
    for key, title in (("top1", "top-1 accuracy (%)"), ("agreement_with_fp32", "top-1 agreement with fp32 (%)")):
        if points and all(getattr(row, key) is not None for row in points):
            return key, title
    return None


def _colour(row: BenchRow) -> str:
    return COLOURS.get(row.runtime, "0.3")


def _label(row: BenchRow) -> str:
    return f"{row.runtime} {row.precision}\n{row.file}"


def _place_labels(axes, points: list[tuple[float, float]], labels: list[str], colours: list[str], renderer) -> None:
    """Annotate each point where its text collides with nothing placed so far (greedy, nearest first);
    in a panel too crowded for that, where it collides with the fewest. A label takes its point's
    colour, so two points close together cannot be read for each other."""
    from matplotlib.text import Text

    frame = axes.get_window_extent(renderer)
    taken = []
    for x, y in points:  # the markers themselves, ~9 px squares
        px, py = axes.transData.transform((x, y))
        taken.append((px - 6, py - 6, px + 6, py + 6))

    def collisions(box) -> int:
        outside = not (frame.x0 + 2 <= box.x0 and box.x1 <= frame.x1 - 2 and frame.y0 + 2 <= box.y0
                       and box.y1 <= frame.y1 - 2)
        return 100 * outside + sum(box.x0 < r[2] and box.x1 > r[0] and box.y0 < r[3] and box.y1 > r[1]
                                   for r in taken)

    for (x, y), text, colour in zip(points, labels, colours):
        best = None  # (collisions, annotation, text box)
        for ring in _RINGS:
            for dx, dy in _DIRECTIONS:
                annotation = axes.annotate(
                    text, (x, y), xytext=(dx * ring, dy * ring), textcoords="offset points", fontsize=8,
                    color=colour, ha="left" if dx > 0 else "right" if dx < 0 else "center",
                    va="bottom" if dy > 0 else "top" if dy < 0 else "center",
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.6, "shrinkB": 5}
                    if ring > _RINGS[0] else None)
                annotation.update_positions(renderer)
                box = Text.get_window_extent(annotation, renderer)  # the text alone, not its leader line
                score = collisions(box)
                if best is None or score < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (score, annotation, box)
                else:
                    annotation.remove()
                if score == 0:
                    break
            if best[0] == 0:
                break
        box = best[2]
        taken.append((box.x0 - 6, box.y0 - 3, box.x1 + 6, box.y1 + 3))  # a gap between neighbouring labels


def _panel(axes, rows: list[BenchRow], values: list[float], *, title: str, log_latency: bool, threads: int) -> None:
    for row, value in zip(rows, values):
        axes.scatter(row.latency_ms.p50, value, s=46, zorder=3, color=_colour(row),
                     marker=MARKERS.get(row.precision, "D"), edgecolors="black", linewidths=0.5)
    axes.set_xlabel(f"p50 latency (ms, batch 1, {threads} threads{', log scale' if log_latency else ''})")
    axes.set_ylabel(title)
    axes.grid(True, alpha=0.3)
    axes.margins(x=0.35, y=0.35)
    if log_latency:
        _log_latency_axis(axes, [row.latency_ms.p50 for row in rows])
    else:  # margins would otherwise reach below 0 ms
        axes.set_xlim(left=max(0.0, axes.get_xlim()[0]))


def _log_latency_axis(axes, latencies: list[float]) -> None:
    """Room for labels on both sides (in decades, not a share of the span), ticks at readable values."""
    import math

    from matplotlib.ticker import FuncFormatter, LogLocator

    axes.set_xscale("log")
    low, high = math.log10(min(latencies)), math.log10(max(latencies))
    pad = max(0.3, 0.2 * (high - low))
    axes.set_xlim(10 ** (low - pad), 10 ** (high + pad))
    # 1, 2, 5, 10 ... over a few decades; decades alone beyond (LogLocator drops every tick when the
    # sub-decade ticks would be too many).
    subs = (1.0, 2.0, 5.0) if high - low + 2 * pad <= 3.5 else (1.0,)
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))  # 0.1, not 10^-1


def _accuracy_limits(values: list[float]) -> tuple[float, float]:
    """At least a point of range around the values (equal accuracies would otherwise get an arbitrary
    +-6% axis), room above them for labels, and never far past 100%."""
    low, high = min(values), max(values)
    span = max(high - low, 1.0)
    return max(0.0, low - 0.6 * span), min(high + 0.6 * span, 100 + 0.25 * span)


def bench_figure(report: dict):
    """The matplotlib Figure, its labels placed (drawn once on an Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    every_row = report_rows(report)
    rows = [row for row in every_row if row.ok and row.latency_ms is not None]
    metric = _metric(rows)
    figure = Figure(figsize=(13, 5.6) if metric else (7.5, 5.6), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, 2 if metric else 1, squeeze=False)[0]
    latencies = [row.latency_ms.p50 for row in rows]
    log_latency = bool(latencies) and max(latencies) / max(min(latencies), 1e-9) > 8
    threads = report["settings"]["threads"]
    series = []
    if metric:
        key, title = metric
        series.append((panels[0], [100 * getattr(row, key) for row in rows], title))
    series.append((panels[-1], [row.size_mb for row in rows], "model file size (MB)"))
    for axes, values, title in series:
        _panel(axes, rows, values, title=title, log_latency=log_latency, threads=threads)
    panels[-1].set_ylim(bottom=0)  # sizes compare by ratio: the axis starts at 0 MB
    if metric:
        panels[0].set_ylim(*_accuracy_limits(series[0][1]))
    host = report["host"]
    where = f"board {host['board']}, " if host.get("board") else ""
    figure.suptitle(f"edgekit bench: {report['model']} for {report['target']} on {where}{host.get('cpu')}",
                    fontsize=11)
    notes = []
    if metric is None:
        notes.append("No accuracy data: run `edgekit bench --data DIR` (a labelled ImageFolder) to plot top-1 "
                     "against latency. Latency vs size only.")
    else:
        notes.append(f"Accuracy on {report['settings'].get('eval_images')} evaluation images.")
    notes.append("One point per model file x runtime x precision; colour: runtime, circle: fp32, square: int8.")
    failed = [f"{row.file} ({row.runtime})" for row in every_row if not row.ok]
    if failed:
        notes.append("Not plotted (failed): " + ", ".join(failed))
    width = figure.get_figwidth()
    lines = [line for note in notes for line in textwrap.wrap(note, width=int(width * 14))]  # ~14 chars/inch
    figure.text(0.01, 0.008, "\n".join(lines), fontsize=8.5, ha="left", va="bottom",
                color="#8a2b00" if metric is None else "0.25")
    # The panels keep clear of the notes: one text line at 8.5 pt is ~0.15 inch.
    figure.get_layout_engine().set(rect=(0, (0.05 + 0.15 * len(lines)) / figure.get_figheight(), 1,
                                         1 - (0.05 + 0.15 * len(lines)) / figure.get_figheight()))
    renderer = figure.canvas.get_renderer()
    figure.draw_without_rendering()  # the layout engine settles the panel frames before labels are placed
    for axes, values, _ in series:
        _place_labels(axes, [(row.latency_ms.p50, v) for row, v in zip(rows, values)],
                      [_label(row) for row in rows], [_colour(row) for row in rows], renderer)
    figure.set_layout_engine("none")  # keep the frames the labels were placed in
    return figure


def render_bench_plot(report: dict) -> bytes:
    """The figure as PNG bytes (the caller writes them atomically), marked as edgekit's in a text chunk."""
    buffer = io.BytesIO()
    bench_figure(report).savefig(buffer, format="png",
                                 metadata={PLOT_KEY: PLOT_SCHEMA, "Software": "edgekit bench --plot"})
    return buffer.getvalue()


def is_bench_plot(path: Path) -> bool:
    """A PNG this module wrote (its text chunk), so `bench --plot` may replace it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get(PLOT_KEY) == PLOT_SCHEMA
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError):
        return False
