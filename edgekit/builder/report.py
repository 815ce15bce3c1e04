"""`edgekit build`'s presenters: REPORT.md, what a person wants to read about an artifact, and the
`edgekit verify` table.

Presenters only: each turns a finished manifest or report into text; what is measured and decided
lives in the pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgekit.quantize.plan.table import render_plan
from edgekit.runtimes.board_runner import DEFAULT_KERNELS, EXACT_INT8_OPTIONS

if TYPE_CHECKING:  # cli.py imports this module for --help: no manifest (numpy) at import time
    from edgekit.artifact.manifest import ArtifactManifest, Int8Tradeoff
    from edgekit.artifact.records import RewriteRecord

def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


X64_EXACT_INT8 = ", ".join(f"{key}={value}" for key, value in EXACT_INT8_OPTIONS.items())


def render_report(manifest: ArtifactManifest) -> str:
    target, model = manifest.target, manifest.model
    parity = manifest.export.parity
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
        f"- fp32 ONNX parity ({parity.samples} samples, {parity.inputs}): max |diff| "
        f"{parity.max_abs_diff:.2e}, normalised {parity.max_normalised_diff:.2e}, "
        f"top-1 agreement {_pct(parity.top1_agreement)}.",
        f"- Simplification ({simplified.tool}): {simplified.nodes_before} -> "
        f"{simplified.nodes_after} nodes"
        + ("" if simplified.applied else f" (not applied: {simplified.reason})") + ".",
        *_rewrite_lines(manifest.rewrite),
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
            f"- int8 vs fp32 on the {check.inputs or 'calibration images'}: top-1 agreement "
            f"{_pct(check.top1_agreement)}, "
            f"max normalised logit diff {check.max_normalised_diff:.3f}.",
        ]
        lines += _x86_int8_lines(manifest)
    if manifest.build_host:
        lines.append(f"- Measured on: {_described_host(manifest.build_host)}.")
    lines += ["", "## Latency (measured during the build)", ""]
    latency = manifest.latency_check
    if latency.measured:
        where = f" on board {latency.board.get('board')}: {_board_words(latency.board)}" if latency.board else ""
        lines.append(f"{latency.runtime}{where}, batch 1, {latency.threads} threads, p50: "
                     + ", ".join(f"{k} {v:.3f} ms" for k, v in latency.p50_ms.items()) + ".")
        if latency.int8_speedup is not None:
            speedup, place = latency.int8_speedup, "on the board" if latency.board else "on this host"
            if manifest.quantization_plan is not None:
                lines.append(f"\nint8 / fp32 speed {place}: {speedup:.2f}x. The shipped plan was chosen by the "
                             "planner's own measurements (below).")
            elif speedup < 1.0:
                lines.append(f"\n**int8 is slower than fp32 {place} ({speedup:.2f}x): the fp32 model is "
                             "recommended.** Size and memory still favour int8; choose by what the device lacks.")
            else:
                lines.append(f"\nint8 is {speedup:.2f}x faster than fp32 {place}.")
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


def _rewrite_lines(rewrite: RewriteRecord | None) -> list[str]:
    """The exact graph rewrites: what was rewritten, its parity and fp32 gain, and what was left as it was."""
    if rewrite is None:
        return ["- Graph rewrites: off (--no-rewrite)."]
    lines = [f"- Graph rewrites ({rewrite.tool} {rewrite.version}, each kept only within fp32 parity "
             f"{rewrite.parity_tolerance:g}; gains {rewrite.timing}): {rewrite.nodes_before} -> "
             f"{rewrite.nodes_after} nodes."]
    for item in rewrite.rewrites:
        if item.applied:
            gain = (f", fp32 {item.fp32_ms_before:.3f} -> {item.fp32_ms_after:.3f} ms "
                    f"({item.fp32_ms_before / item.fp32_ms_after:.2f}x)" if item.fp32_ms_before else "")
            text = f"{item.matches} rewritten, parity {item.parity_max_normalised_diff:.1e}{gain}"
        else:
            text = f"not applied ({item.reason})"
        if item.near_misses:
            text += f"; left as they are: {'; '.join(item.near_misses)}"
        lines.append(f"  - `{item.name}` ({item.pattern}): {text}.")
    return lines


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


def _board_words(host) -> str:
    return f"{host.get('cpu')}, {host.get('arch')}, {host.get('os')}, onnxruntime {host.get('onnxruntime')}"


def _described_host(host: dict) -> str:
    words = f"{host.get('cpu')} ({host.get('arch')}"
    if host.get("isa_level"):
        words += f", {host['isa_level']}" + (", emulated" if host.get("emulated") else "")
    words += ")"
    if host.get("ort_int8_kernels"):
        words += f"; ONNX Runtime int8 kernels: {host['ort_int8_kernels']}"
    return words


def write_report(folder: Path, manifest: ArtifactManifest) -> None:
    (folder / "REPORT.md").write_text(render_report(manifest))


def render_tradeoff(tradeoff: Int8Tradeoff, target_name: str) -> list[str]:
    """REPORT.md's section for a CPU without int8 dot-product (see builder.pipeline._int8_tradeoff)."""
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


def print_verify_report(report: dict, console: Console | None = None) -> None:
    """`edgekit verify`: this host vs emulated aarch64, one row per model file."""
    emulated = report["emulated"]
    versions = ", ".join(f"{name} {emulated[name]}" for name in ("onnxruntime", "openvino") if emulated.get(name))
    table = Table(title=f"{report['model']} ({report['target']}): {report['host']['arch']} vs emulated aarch64",
                  caption=f"{emulated['cpu']} under qemu user-mode, {versions}, {report['inputs']}. Pass: top-1 "
                          f"agreement 100% and max normalised diff <= {report['tolerance']:g} (OpenVINO int8: "
                          "top-1 alone, its kernels differ by ISA). Correctness only: emulation says nothing "
                          "about speed.")
    for title in ("model file", "runtime", "prec", "max |diff|", "max norm diff", "top-1 agree", "bit-exact", "result"):
        table.add_column(title, justify="left" if title in ("model file", "runtime", "prec", "result") else "right")
    for row in report["results"]:
        if "error" in row:
            table.add_row(row["file"], row["runtime"], row["precision"], "-", "-", "-", "-", "[red]FAIL[/red] (below)")
            continue
        table.add_row(row["file"], row["runtime"], row["precision"], f"{row['max_abs_diff']:.3g}",
                      f"{row['max_norm_diff']:.3g}", f"{100 * row['top1_agreement']:.1f}%",
                      "yes" if row["bit_exact"] else "no", "[green]pass[/green]" if row["passed"] else "[red]FAIL[/red]")
    console = console or Console(width=max(Console().width, 110))
    console.print(table)
    for row in report["results"]:
        if "error" in row:
            console.print(f"{escape(row['file'])}: {escape(row['error'])}", soft_wrap=True)
