"""What edgekit shows people: the bench table and CSV, the build's REPORT.md and int8 plan table, the prune,
verify and search tables.

Presenters only: each turns a finished report or manifest into text; what is measured and
decided lives in the stages.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table

from edgekit.runtimes.board_runner import DEFAULT_KERNELS, EXACT_INT8_OPTIONS

if TYPE_CHECKING:  # edgekit.artifact.manifest imports edgekit.models (torch); cli.py imports this module for --help
    from edgekit.artifact.manifest import ArtifactManifest, Int8Tradeoff
    from edgekit.artifact.plan_records import QuantizationPlan

# ---- edgekit bench: a terminal table (rich) and a flat CSV ----------------------------------------

COLUMNS = [
    ("file", "model file"), ("runtime", "runtime"), ("precision", "prec"), ("size_mb", "MB"),
    ("p50", "p50 ms"), ("p90", "p90 ms"), ("p99", "p99 ms"), ("mean", "mean ms"),
    ("throughput_ips", "img/s"), ("speedup_vs_fp32", "vs fp32"), ("speedup_vs_ort_fp32", "vs ORT fp32"), ("peak_rss_mb", "RSS MB"),
    ("top1", "top-1"), ("agreement_with_fp32", "agree"), ("int8_kernels", "int8 arith"),
]
LEFT = ("file", "runtime", "precision")
MIN_WIDTH = 175  # the table's natural width; narrower consoles (and pipes, 80) would truncate cells


def flatten(row: dict) -> dict:
    flat = {key: row.get(key) for key, _ in COLUMNS}
    for key in ("p50", "p90", "p99", "mean"):
        flat[key] = row.get("latency_ms", {}).get(key)
    flat["error"] = row.get("error")
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
    for row in report["results"]:
        flat = flatten(row)
        if not row.get("ok"):
            table.add_row(flat["file"], flat["runtime"], flat["precision"], cell_text("size_mb", flat["size_mb"]),
                          f"[red]failed: {flat['error']}[/red]", *["-"] * (len(COLUMNS) - 5))
            continue
        table.add_row(*[cell_text(key, flat[key]) for key, _ in COLUMNS])
    console.print(table)
    if any(row.get("int8_kernels") == SATURATING for row in report["results"]):
        console.print(SATURATING_NOTE)


SATURATING = "may saturate"
SATURATING_NOTE = ("int8 arith 'may saturate': this CPU has no VNNI and the row ran ONNX Runtime's default u8 x s8 "
                   "kernels, as its plan chose; session.x64quantprecision=1 runs the exact int8 arithmetic, slower")


CSV_FIELDS = ["model", "target", *(key for key, _ in COLUMNS), "error"]


def csv_text(report: dict) -> str:
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in report["results"]:
        writer.writerow({"model": report["model"], "target": report["target"], **flatten(row)})
    return handle.getvalue()


def is_bench_csv(path: Path) -> bool:
    """A CSV this module wrote (its header line), so `bench --csv` may replace it."""
    try:
        with path.open(newline="") as handle:
            return next(csv.reader(handle), None) == CSV_FIELDS
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


# ---- edgekit build: REPORT.md, what a person wants to read about an artifact ---------------------

def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


X64_EXACT_INT8 = ", ".join(f"{key}={value}" for key, value in EXACT_INT8_OPTIONS.items())


def render_report(manifest: ArtifactManifest) -> str:
    target, model = manifest.target, manifest.model
    parity = manifest.export["parity"]
    simplified = manifest.simplify
    preprocessing = manifest.preprocessing.to_dict()  # rendered as the manifest records it
    lines = [
        f"# {model.name} for {target.name}",
        "",
        f"Built {manifest.created} by edgekit {manifest.versions['edgekit']}. Target: {target.description}.",
        "",
        "## Models",
        "",
        "| file | runtime | precision |",
        "|---|---|---|",
        *[f"| {m.file} | {m.runtime} | {m.precision} |" for m in manifest.models],
        "",
        f"**Recommended for deployment: `{manifest.recommended_model}`** ({manifest.recommendation_reason})",
        "",
        "## Checks",
        "",
        f"- Input: {list(manifest.input.shape)} NCHW float32, preprocessing {preprocessing['colour_mode']} "
        f"resized to {preprocessing['input_size']}, mean {preprocessing['mean']}, "
        f"std {preprocessing['std']}.",
        f"- fp32 ONNX parity ({parity.get('samples')} samples, {parity.get('inputs')}): max |diff| "
        f"{parity['max_abs_diff']:.2e}, normalised {parity['max_normalised_diff']:.2e}, "
        f"top-1 agreement {_pct(parity['top1_agreement'])}.",
        f"- Simplification ({simplified['tool']}): {simplified['nodes_before']} -> "
        f"{simplified['nodes_after']} nodes"
        + ("" if simplified["applied"] else f" (not applied: {simplified.get('reason')})") + ".",
    ]
    quant = manifest.quantization
    if quant.skipped is not None:
        lines.append(f"- int8: skipped ({quant.skipped}).")
    else:
        settings = ", ".join(f"{k}={v}" for k, v in quant.settings.items() if k != "calibration_options")
        calib = quant.calibration
        check = quant.int8_vs_fp32
        lines += [
            f"- int8 quantization: {settings}.",
            f"- Calibration: {calib.images} of {calib.available} images from `{calib.source}` "
            f"(sha256 {calib.sha256[:16]}...).",
            f"- int8 vs fp32 on the {check.get('inputs', 'calibration images')}: top-1 agreement "
            f"{_pct(check['top1_agreement'])}, "
            f"max normalised logit diff {check['max_normalised_diff']:.3f}.",
        ]
        lines += _x86_int8_lines(manifest)
    if manifest.build_host:
        lines.append(f"- Measured on: {_described_host(manifest.build_host)}.")
    lines += ["", "## Latency (measured during the build)", ""]
    latency = manifest.latency_check
    if latency.measured:
        lines.append(f"{latency.runtime}, batch 1, {latency.threads} threads, p50: "
                     + ", ".join(f"{k} {v:.3f} ms" for k, v in latency.p50_ms.items()) + ".")
        if latency.int8_speedup is not None:
            speedup = latency.int8_speedup
            if manifest.quantization_plan is not None:
                lines.append(f"\nint8 / fp32 speed here: {speedup:.2f}x. The shipped plan was chosen by the "
                             "planner's own measurements (below).")
            elif speedup < 1.0:
                lines.append(f"\n**int8 is slower than fp32 on this host ({speedup:.2f}x): the fp32 model is "
                             "recommended.** Size and memory still favour int8; choose by what the device lacks.")
            else:
                lines.append(f"\nint8 is {speedup:.2f}x faster than fp32 here.")
    else:
        lines.append(f"Not measured: {latency.reason}.")
    if manifest.quantization_plan is not None:
        lines += render_plan(manifest.quantization_plan)
    if manifest.int8_tradeoff:
        lines += render_tradeoff(manifest.int8_tradeoff, target_name=target.name)
    if target.rationale:
        lines += ["", "## Why these settings", ""]
        lines += [f"- {key.replace('_', ' ')}: {text}" for key, text in target.rationale.items()]
    lines += ["", "Full details and sha256 of every file: `manifest.json`. Benchmark: `edgekit bench <this folder>`.", ""]
    return "\n".join(lines)


def _x86_int8_lines(manifest: ArtifactManifest) -> list[str]:
    """What an x86 user of the ONNX Runtime int8 model must know: which kernels its numbers need."""
    int8 = next((m for m in manifest.models if m.runtime == "onnxruntime" and m.precision == "int8"), None)
    if int8 is None:
        return []
    if manifest.quantization.settings.get("weight_bits") == 7:
        return ["- x86 int8: 7-bit weights, so ONNX Runtime's default session is exact on every x86 CPU "
                "(its u8 x s8 sums cannot saturate); no session option is needed."]
    if int8.x86_int8_kernels == DEFAULT_KERNELS:
        return ["- x86 int8: the planner chose ONNX Runtime's default kernels, measured on this CPU without VNNI, "
                "where their u8 x s8 sums may saturate; the accuracy above is with them (VNNI CPUs run the exact "
                f"arithmetic). `{X64_EXACT_INT8}` runs the exact arithmetic here, slower."]
    if manifest.target.arch in (None, "x86_64"):
        return [f"- Running the int8 model on an x86 CPU without AVX-512 VNNI: create the ONNX Runtime "
                f"session with `{X64_EXACT_INT8}` (edgekit's bench and verify do). Without it ORT's "
                "u8 x s8 kernels saturate there and int8 accuracy can collapse (benchmarks/README.md)."]
    return []


def _described_host(host: dict) -> str:
    words = f"{host.get('cpu')} ({host.get('arch')}"
    if host.get("isa_level"):
        words += f", {host['isa_level']}" + (", emulated" if host.get("emulated") else "")
    words += ")"
    if host.get("ort_int8_kernels"):
        words += f"; ONNX Runtime int8 kernels: {host['ort_int8_kernels']}"
    return words


def _plan_rows(plan: QuantizationPlan) -> list[list[str]]:
    rows = []
    for c in plan.candidates:
        settings = ", ".join(f"{k}={v}" for k, v in c.settings.items() if k != "fallback_nodes") or "-"
        tried = c.status == "tried"
        rows.append([("**" + c.name + "**") if c.name == plan.chosen else c.name, c.precision, settings,
                     f"{c.accuracy:.2f}" if tried else "-", f"{c.drop:+.2f}" if tried else "-",
                     f"{c.p50_ms:.3f}" if tried and c.p50_ms is not None else "-",
                     f"{c.size_bytes / 1e6:.2f}" if tried else "-", "yes" if c.within_budget else
                     ("no" if tried else c.status)])
    return rows


PLAN_COLUMNS = ("plan", "precision", "settings", "accuracy %", "drop (points)", "p50 ms", "size MB", "within budget")


def render_plan(plan: QuantizationPlan) -> list[str]:
    """REPORT.md's table of every int8 plan the planner considered (edgekit.quantize.plan)."""
    evaluation = plan.evaluation
    lines = ["", "## int8 plan (`--max-drop`)", "",
             f"Budget: at most {plan.max_drop:g} points of {plan.metric}, objective {plan.objective}. Judged on "
             f"{evaluation.get('images')} held-out images from `{evaluation.get('source')}` "
             f"({evaluation.get('selection')}); fp32: {plan.baseline_accuracy:.2f}%. {plan.latency[:1].upper()}"
             f"{plan.latency[1:]}. Spent {plan.spent_seconds:.0f} s of a {plan.budget_seconds:.0f} s plan budget.",
             "", "| " + " | ".join(PLAN_COLUMNS) + " |", "|" + "---|" * len(PLAN_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _plan_rows(plan)]
    lines += ["", f"**Shipped: {plan.chosen}** ({plan.reason})."]
    return lines


def print_plan_table(plan: QuantizationPlan, console: Console | None = None) -> None:
    """The REPORT table without its settings column (REPORT.md and the manifest have them)."""
    table = Table(title=f"int8 plans (max drop {plan.max_drop:g} points; {plan.metric})")
    shown = [i for i, title in enumerate(PLAN_COLUMNS) if title != "settings"]
    for i in shown:
        table.add_column(PLAN_COLUMNS[i], overflow="fold")
    for row in _plan_rows(plan):
        table.add_row(*[row[i].replace("**", "") for i in shown])
    (console or Console()).print(table)
    (console or Console()).print(f"shipped: {plan.chosen} ({plan.reason})")


def write_report(folder: Path, manifest: ArtifactManifest) -> None:
    (folder / "REPORT.md").write_text(render_report(manifest))


def render_tradeoff(tradeoff: Int8Tradeoff, target_name: str) -> list[str]:
    """REPORT.md's section for a CPU without int8 dot-product (see stages.build._int8_tradeoff)."""
    mb = 1e6
    return [
        "", "## int8 on a CPU without int8 dot-product", "",
        f"The {target_name} CPU has no int8 dot-product instructions, so int8 inference widens every product "
        "to 16/32 bits.",
        "",
        f"- **What int8 buys:** `{tradeoff.int8_model}` is {tradeoff.int8_bytes / mb:.2f} MB against "
        f"{tradeoff.fp32_bytes / mb:.2f} MB for fp32 ({tradeoff.size_ratio:.1f}x smaller on disk, and the "
        "weights take that much less memory once loaded).",
        "- **What it may cost:** latency. Without dot-product instructions int8 is often no faster than fp32 "
        f"and can be slower; latency here: {tradeoff.latency}.",
        f"- **The fp32 model ships beside it:** `{tradeoff.fp32_model}`. Measure both on the board "
        "(`edgekit bench <this folder> --host user@board`) and deploy the one that meets your latency and "
        "memory budget.",
    ]


# ---- edgekit prune: the rounds as a terminal table ------------------------------------------------

def print_prune_rounds(result) -> None:
    table = Table(title=f"edgekit prune: {result.summary['settings']['method']} -> {result.checkpoint}")
    for title in ("stage", "conv sparsity", "params", "val acc before fine-tune", "val acc"):
        table.add_column(title, justify="left" if title == "stage" else "right")
    for row in result.rounds:
        before = row.get("accuracy_before_finetune")
        table.add_row(row["stage"], f"{100 * row['conv_sparsity']:.1f}%", f"{row['params']:,}",
                      "" if before is None else f"{100 * before:.2f}%", f"{100 * row['val_accuracy']:.2f}%")
    Console(stderr=True).print(table)


def print_verify_report(report: dict, console: Console | None = None) -> None:
    """`edgekit verify`: this host vs emulated aarch64, one row per model file."""
    emulated = report["emulated"]
    table = Table(title=f"{report['model']} ({report['target']}): {report['host']['arch']} vs emulated aarch64 "
                        "ONNX Runtime",
                  caption=f"{emulated['cpu']} under qemu user-mode, ONNX Runtime {emulated['onnxruntime']}, "
                          f"{report['inputs']}. Pass: top-1 agreement 100% and max normalised diff <= "
                          f"{report['tolerance']:g}. Correctness only: emulation says nothing about speed.")
    for title in ("model file", "prec", "max |diff|", "max norm diff", "top-1 agree", "bit-exact", "result"):
        table.add_column(title, justify="left" if title in ("model file", "prec", "result") else "right")
    for row in report["results"]:
        table.add_row(row["file"], row["precision"], f"{row['max_abs_diff']:.3g}", f"{row['max_norm_diff']:.3g}",
                      f"{100 * row['top1_agreement']:.1f}%", "yes" if row["bit_exact"] else "no",
                      "[green]pass[/green]" if row["passed"] else "[red]FAIL[/red]")
    (console or Console(width=max(Console().width, 110))).print(table)


def print_search_results(summary: dict, console: Console | None = None) -> None:
    """`edgekit search`: one row per candidate, the best marked."""
    console = console or Console(width=max(Console().width, 150))
    settings = summary["settings"]
    table = Table(title=f"edgekit search: {settings['model']} ({summary['split']['train']} train / "
                        f"{summary['split']['val']} val images, {summary['classes']} classes; int8 latency on "
                        f"{settings['target']}, batch 1)", box=box.SIMPLE_HEAD)
    for title in ("id", "step", "candidate", "params", "MMACs", "val acc", "int8 ms", "fp32 ms", "score", "pareto"):
        table.add_column(title, justify="left" if title in ("id", "step", "candidate") else "right")
    for c in summary["candidates"]:
        best = " <- best" if c["id"] == summary["best"] else ""
        ms = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        table.add_row(c["id"], c["step"], c["label"] + best, f"{c['params']:,}", f"{c['macs'] / 1e6:.1f}",
                      f"{100 * c['val_accuracy']:.2f}%", ms(c["int8_p50_ms"]), ms(c["fp32_p50_ms"]),
                      f"{c['score']:.2f}", "*" if c["pareto"] else "")
    console.print(table)


# ---- edgekit diff: the layers that add int8 loss, and every runtime at the output ----------------

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
