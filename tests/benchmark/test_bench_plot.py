"""`bench --plot`: a real PNG of sensible size, every point labelled, no label over another label or a
marker, units on the axes, and the accuracy-free variant saying what is missing."""

from __future__ import annotations

import io

import pytest
from matplotlib.text import Text
from PIL import Image

from edgekit.benchmark.plot import PLOT_KEY, PLOT_SCHEMA, bench_figure, is_bench_plot, render_bench_plot
from tests.bench_samples import sample_report


def _label_boxes(axes, renderer) -> list:
    """Each label's text (an Annotation's own extent includes its leader line)."""
    return [Text.get_window_extent(text, renderer) for text in axes.texts]


def _overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("accuracy", [True, False])
def test_every_point_is_labelled_and_no_label_overlaps(accuracy):
    report = sample_report(accuracy=accuracy, failed=True)
    figure = bench_figure(report)
    renderer = figure.canvas.get_renderer()
    panels = figure.axes
    assert len(panels) == (2 if accuracy else 1)
    plotted = [row for row in report["results"] if row["ok"]]
    for axes in panels:
        assert "p50 latency (ms" in axes.get_xlabel()
        labels = [text.get_text() for text in axes.texts]
        assert sorted(labels) == sorted(f"{r['runtime']} {r['precision']}\n{r['file']}" for r in plotted)
        boxes = _label_boxes(axes, renderer)
        frame = axes.get_window_extent(renderer)
        for i, box in enumerate(boxes):
            assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            assert not any(_overlap(box, other) for other in boxes[i + 1:]), labels[i]
            for x, y in axes.transData.transform([a.xy for a in axes.texts]):  # no label hides a marker
                assert not (box.x0 < x < box.x1 and box.y0 < y < box.y1), labels[i]
    assert panels[-1].get_ylabel() == "model file size (MB)"
    notes = " ".join(text.get_text() for text in figure.texts)
    assert "Not plotted (failed): model_int8.onnx (pytorch)" in notes
    if accuracy:
        assert panels[0].get_ylabel() == "top-1 accuracy (%)"
    else:
        assert "No accuracy data" in notes


def test_agreement_is_plotted_when_there_are_no_labels():
    report = sample_report()
    for row in report["results"]:
        row.pop("top1")
    assert bench_figure(report).axes[0].get_ylabel() == "top-1 agreement with fp32 (%)"


@pytest.mark.parametrize("slowest", [25.0, 2500.0])
def test_a_wide_latency_range_uses_a_log_axis_with_readable_ticks(slowest):
    report = sample_report()
    report["results"][0]["latency_ms"]["p50"] = slowest
    axes = bench_figure(report).axes[0]
    assert axes.get_xscale() == "log" and "log scale" in axes.get_xlabel()
    low, high = axes.get_xlim()
    shown = [label.get_text() for tick, label in zip(axes.get_xticks(), axes.get_xticklabels()) if low <= tick <= high]
    assert len(shown) >= 3 and "0.1" in shown and all("^" not in text for text in shown)


def test_the_png_is_valid_sized_and_marked_as_edgekits(tmp_path):
    data = render_bench_plot(sample_report())
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.width >= 1200 and 500 <= image.height <= image.width
        assert image.info[PLOT_KEY] == PLOT_SCHEMA
    path = tmp_path / "plot.png"
    path.write_bytes(data)
    assert is_bench_plot(path)
    users = tmp_path / "users.png"
    Image.new("RGB", (8, 8)).save(users)
    (tmp_path / "text.png").write_text("not a PNG")
    assert not is_bench_plot(users) and not is_bench_plot(tmp_path / "text.png")
