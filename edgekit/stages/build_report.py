"""REPORT.md: what a person wants to read about an artifact, taken from its manifest."""

from __future__ import annotations

from pathlib import Path

from edgekit.stages.int8_tradeoff import render_tradeoff


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def render_report(manifest: dict) -> str:
    target, model = manifest["target"], manifest["model"]
    parity = manifest["export"]["parity"]
    lines = [
        f"# {model['name']} for {target['name']}",
        "",
        f"Built {manifest['created']} by edgekit {manifest['versions']['edgekit']}. Target: {target['description']}.",
        "",
        "## Models",
        "",
        "| file | runtime | precision |",
        "|---|---|---|",
        *[f"| {m['file']} | {m['runtime']} | {m['precision']} |" for m in manifest["models"]],
        "",
        f"**Recommended for deployment: `{manifest['recommended_model']}`** ({manifest['recommendation_reason']})",
        "",
        "## Checks",
        "",
        f"- Input: {manifest['input']['shape']} NCHW float32, preprocessing {manifest['preprocessing']['colour_mode']} "
        f"resized to {manifest['preprocessing']['input_size']}, mean {manifest['preprocessing']['mean']}, "
        f"std {manifest['preprocessing']['std']}.",
        f"- fp32 ONNX parity ({parity.get('samples')} samples, {parity.get('inputs')}): max |diff| "
        f"{parity['max_abs_diff']:.2e}, normalised {parity['max_normalised_diff']:.2e}, "
        f"top-1 agreement {_pct(parity['top1_agreement'])}.",
        f"- Simplification ({manifest['simplify']['tool']}): {manifest['simplify']['nodes_before']} -> "
        f"{manifest['simplify']['nodes_after']} nodes"
        + ("" if manifest["simplify"]["applied"] else f" (not applied: {manifest['simplify'].get('reason')})") + ".",
    ]
    quant = manifest["quantization"]
    if "skipped" in quant:
        lines.append(f"- int8: skipped ({quant['skipped']}).")
    else:
        settings = ", ".join(f"{k}={v}" for k, v in quant.items()
                             if k not in ("calibration", "int8_vs_fp32", "calibration_options"))
        calib = quant["calibration"]
        check = quant["int8_vs_fp32"]
        lines += [
            f"- int8 quantization: {settings}.",
            f"- Calibration: {calib['images']} of {calib['available']} images from `{calib['source']}` "
            f"(sha256 {calib['sha256'][:16]}...).",
            f"- int8 vs fp32 on the calibration images: top-1 agreement {_pct(check['top1_agreement'])}, "
            f"max normalised logit diff {check['max_normalised_diff']:.3f}.",
        ]
    lines += ["", "## Latency (measured during the build)", ""]
    latency = manifest["latency_check"]
    if latency.get("measured"):
        p50 = latency["p50_ms"]
        lines.append(f"{latency['runtime']}, batch 1, {latency['threads']} threads, p50: "
                     + ", ".join(f"{k} {v:.3f} ms" for k, v in p50.items()) + ".")
        if "int8_speedup" in latency:
            speedup = latency["int8_speedup"]
            if speedup < 1.0:
                lines.append(f"\n**int8 is slower than fp32 on this host ({speedup:.2f}x): the fp32 model is "
                             "recommended.** Size and memory still favour int8; choose by what the device lacks.")
            else:
                lines.append(f"\nint8 is {speedup:.2f}x faster than fp32 here.")
    else:
        lines.append(f"Not measured: {latency['reason']}.")
    if manifest.get("int8_tradeoff"):
        lines += render_tradeoff(manifest["int8_tradeoff"], target_name=target["name"])
    if target.get("rationale"):
        lines += ["", "## Why these settings", ""]
        lines += [f"- {key.replace('_', ' ')}: {text}" for key, text in target["rationale"].items()]
    lines += ["", "Full details and sha256 of every file: `manifest.json`. Benchmark: `edgekit bench <this folder>`.", ""]
    return "\n".join(lines)


def write_report(folder: Path, manifest: dict) -> None:
    (folder / "REPORT.md").write_text(render_report(manifest))
