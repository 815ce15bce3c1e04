"""What int8 buys and costs on a CPU without int8 dot-product instructions (e.g. the Pi 4's A72).

Such CPUs widen int8 products to 16/32-bit lanes, so int8 can run no faster, or slower, than
fp32; the file size and the memory the weights occupy still shrink about 4x. The build records
both sides and points at the fp32 model that ships beside the int8 one.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.artifact import entry_bytes


def int8_tradeoff(folder: Path, manifest: dict) -> dict | None:
    """None unless the target says it lacks int8 dot-product and an int8 model was built."""
    target = manifest["target"]
    models = {m["precision"]: m for m in manifest["models"] if m["runtime"] == target["runtime"]}
    if target.get("int8_dot_product") is not False or "int8" not in models:
        return None

    fp32_bytes, int8_bytes = entry_bytes(folder, models["fp32"]), entry_bytes(folder, models["int8"])
    check = manifest["latency_check"]
    return {
        "fp32_model": models["fp32"]["file"], "int8_model": models["int8"]["file"],
        "fp32_bytes": fp32_bytes, "int8_bytes": int8_bytes, "size_ratio": fp32_bytes / int8_bytes,
        "latency": (f"int8 {check['int8_speedup']:.2f}x fp32 on the build host" if check.get("measured")
                    else f"not measured: {check.get('reason', 'unknown')}"),
    }


def render_tradeoff(tradeoff: dict, target_name: str) -> list[str]:
    mb = 1e6
    return [
        "", "## int8 on a CPU without int8 dot-product", "",
        f"The {target_name} CPU has no int8 dot-product instructions, so int8 inference widens every product "
        "to 16/32 bits.",
        "",
        f"- **What int8 buys:** `{tradeoff['int8_model']}` is {tradeoff['int8_bytes'] / mb:.2f} MB against "
        f"{tradeoff['fp32_bytes'] / mb:.2f} MB for fp32 ({tradeoff['size_ratio']:.1f}x smaller on disk, and the "
        "weights take that much less memory once loaded).",
        "- **What it may cost:** latency. Without dot-product instructions int8 is often no faster than fp32 "
        f"and can be slower; latency here: {tradeoff['latency']}.",
        f"- **The fp32 model ships beside it:** `{tradeoff['fp32_model']}`. Measure both on the board "
        "(`edgekit bench <this folder> --host user@board`) and deploy the one that meets your latency and "
        "memory budget.",
    ]
