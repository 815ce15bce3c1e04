"""`edgekit diff`'s presenter: the layers that add int8 loss, and every runtime at the output (the records
are diff.report)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table


def _db(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _print_output_cost(cost, top: int, console: Console) -> None:
    table = Table(title=f"output cost: each of {cost.pairs} Q/DQ pairs alone in the fp32 model "
                        f"({cost.images} images), the {min(top, len(cost.costs))} costliest",
                  caption="output SQNR: logits with only this pair quantized vs fp32 logits. share: of the "
                          "noise summed over all pairs. agree: top-1 agreement with fp32.", box=box.SIMPLE_HEAD)
    for title in ("rank", "tensor", "kind", "read by", "output SQNR dB", "share", "cumulative", "agree"):
        table.add_column(title, justify="left" if title in ("tensor", "kind", "read by") else "right",
                         no_wrap=title != "tensor")
    running = 0.0
    for row in cost.costs[:top]:
        running += row.noise_share
        table.add_row(str(row.rank), row.tensor, row.kind, ",".join(dict.fromkeys(row.consumers)) or "-",
                      _db(row.output_sqnr_db), f"{100 * row.noise_share:.1f}%", f"{100 * running:.1f}%",
                      f"{100 * row.agreement:.1f}%")
    console.print(table)
    half, most = cost.pairs_for_share(0.5), cost.pairs_for_share(0.9)
    summed = "-" if cost.summed_to_whole is None else f"{cost.summed_to_whole:.2f}"
    verdict = ("concentrated: keeping these pairs' layers in fp32 should recover most of the loss" if cost.concentrated()
               else "spread: no few layers carry it; tighter activation ranges (another calibration method) "
                    "are the lever, not fp32 fallback" if cost.share_of("activation") > 0.5
               else "spread, mostly in the weights: per-channel weights or fp32 fallback of the worst")
    console.print(f"int8 model at the output: {_db(cost.int8_output_sqnr_db)} dB, "
                  f"{100 * cost.int8_agreement:.1f}% top-1 agreement; single-pair noise summed / whole: {summed}; "
                  f"weights carry {100 * cost.share_of('weight'):.1f}% of it; half is in {half} and 90% in {most} "
                  f"of {cost.pairs} pairs ({verdict})"
                  + (f"; {len(cost.skipped)} pairs not in the fp32 graph" if cost.skipped else ""))
    if cost.ranges is not None:
        _print_range_choices(cost.ranges, top, console)


def _print_range_choices(ranges, top: int, console: Console) -> None:
    table = Table(title=f"range choice of the {len(ranges.choices)} costliest activations (chosen on "
                        f"{ranges.fit_images} images, scored on {ranges.score_images} others)",
                  caption="chosen: the least noisy on the fitting images of the recorded range and candidates "
                          "from the data range (mean over images of each image's min and max) towards it; widening: "
                          "chosen / data range. width: chosen / recorded. noise x: this pair's output noise with the "
                          "chosen range / with the recorded one, on the held-out images; images better: the share of them "
                          "whose logit error it lowered (a sum far above 1 with most images better: outliers it "
                          "clips).", box=box.SIMPLE_HEAD)
    for title in ("tensor", "recorded range", "chosen range", "widening", "width", "noise x", "images better"):
        table.add_column(title, justify="left" if title == "tensor" else "right", no_wrap=title != "tensor")
    for row in ranges.choices[:top]:
        recorded = f"[{row.recorded[0]:.3g}, {row.recorded[1]:.3g}]"
        if row.chosen is None:
            table.add_row(row.tensor, recorded, "recorded", "-", "1.00x", "1.00", "-")
            continue
        width = (row.chosen[1] - row.chosen[0]) / max(row.recorded[1] - row.recorded[0], 1e-30)
        table.add_row(row.tensor, recorded, f"[{row.chosen[0]:.3g}, {row.chosen[1]:.3g}]", f"{row.widening:.3g}x",
                      f"{width:.2f}x", f"{row.noise_ratio:.2f}", f"{100 * row.images_better:.0f}%")
    console.print(table)
    as_built = f"{100 * ranges.recorded_agreement:.1f}% agreement, {_db(ranges.recorded_sqnr_db)} dB"
    if ranges.tightened_agreement is None:
        console.print(f"every recorded range was the least noisy: the ranges are not the lever (int8 as built: {as_built})")
        return
    console.print(f"with the {ranges.applied} re-chosen ranges put into the int8 model together, on the "
                  f"{ranges.score_images} held-out images: {as_built} as built -> "
                  f"{100 * ranges.tightened_agreement:.1f}%, {_db(ranges.tightened_sqnr_db)} dB")


def _print_speed(speed, top: int, console: Console) -> None:
    verdict = (f"int8 is {1 / speed.int8_speedup:.2f}x SLOWER than fp32" if speed.int8_speedup < 1
               else f"int8 is {speed.int8_speedup:.2f}x faster than fp32")
    table = Table(title=f"where {speed.int8_model} spends its time: {verdict} (ONNX Runtime profile, "
                        f"{speed.threads} threads, {speed.runs} runs: fp32 {speed.fp32_ms:.3f} ms, "
                        f"int8 {speed.int8_ms:.3f} ms of node time)",
                  caption="Nodes as ONNX Runtime runs them after its fusions. pattern: why such a node is slow "
                          "in int8; what helps: the rewrite or change that removes it.", box=box.SIMPLE_HEAD)
    for title in ("node", "op", "ms", "share", "pattern", "what helps"):
        table.add_column(title, justify="right" if title in ("ms", "share") else "left")
    for node in speed.slowest[:top]:
        table.add_row(node.name, node.op, f"{node.ms:.3f}", f"{100 * node.share:.0f}%", node.pattern or "-",
                      node.remedy or "-")
    console.print(table)
    if speed.by_pattern:
        console.print("int8 time by pattern: " + ", ".join(f"{pattern} {ms:.3f} ms ({100 * ms / speed.int8_ms:.0f}%)"
                                                           for pattern, ms in speed.by_pattern.items()))


def print_diff_report(report, *, top: int = 15, console: Console | None = None) -> None:
    """`edgekit diff`: the ``top`` tensors whose node adds the most loss, then one row per runtime."""
    console = console or Console(width=max(Console().width, 150))
    layers = report.layers
    if layers is not None:
        table = Table(title=f"edgekit diff: {layers.int8_model} vs {layers.fp32_model} ({report.model}, "
                            f"{layers.images} images), the {min(top, len(layers.tensors))} of "
                            f"{len(layers.tensors)} tensors whose node adds the most loss",
                      caption="SQNR: int8 tensor vs fp32 tensor (higher is better). added: SQNR of the node's "
                              "worst input minus its output's (the loss this node causes; downstream nodes "
                              "inherit it). rounding: this tensor's own Q/DQ alone. weight: its weights' SQNR.",
                      box=box.SIMPLE_HEAD)
        for title in ("rank", "#", "tensor", "op", "int8 kernel", "SQNR dB", "added dB", "rounding dB",
                      "weight dB", "rel err"):
            table.add_column(title, justify="left" if title in ("tensor", "op", "int8 kernel") else "right",
                             no_wrap=title != "tensor")
        for row in layers.ranked()[:top]:
            op = "+".join((row.op, *row.folded))
            if layers.backend == "openvino":  # no kernel inspection there: say whether its inputs are FakeQuantized
                kernel = "FQ inputs" if row.quantized else "-"
            else:
                kernel = row.kernel if row.int8_kernel else (f"fp32 ({row.kernel})" if row.kernel else "-")
                if not row.quantized and row.op != "input":
                    kernel += ", not QDQ"
            added = _db(row.introduced_db)
            if row.tensor == layers.first_sharp_drop:
                added = f"[red]{added}[/red]"
            table.add_row(str(row.rank), str(row.index), row.tensor, op, kernel, _db(row.sqnr_db), added,
                          _db(row.rounding_sqnr_db), _db(row.weight_sqnr_db), f"{row.relative_error:.3g}")
        console.print(table)
        first = layers.first_sharp_drop
        console.print(f"loss starts at: {first} (first node adding >= {layers.sharp_drop_db:g} dB)" if first else
                      f"no node adds >= {layers.sharp_drop_db:g} dB; most added at {layers.largest_introduced}; "
                      f"lowest SQNR at {layers.lowest_sqnr}")
    elif report.layers_note:
        console.print(f"per layer: {report.layers_note}")
    if report.output_cost is not None:
        _print_output_cost(report.output_cost, top, console)
    outputs = Table(title=f"at the output, {report.output_images} images from {report.images_source}",
                    box=box.SIMPLE_HEAD)
    for title in ("runtime", "prec", "model", "max |diff|", "max norm diff", "top-1 agree", "top-1"):
        outputs.add_column(title, justify="left" if title in ("runtime", "prec", "model") else "right")
    for row in report.outputs:
        if not row.ok:
            outputs.add_row(row.runtime, row.precision, row.model, f"[red]not run: {row.error}[/red]", "-", "-", "-")
            continue
        pct = lambda v: "-" if v is None else f"{100 * v:.1f}%"  # noqa: E731
        reference = " (reference)" if row.reference else ""
        outputs.add_row(row.runtime, row.precision, row.model + reference, f"{row.max_abs_diff:.3g}",
                        f"{row.max_normalised_diff:.3g}", pct(row.top1_agreement), pct(row.top1))
    console.print(outputs)
    if report.speed is not None:
        _print_speed(report.speed, top, console)
