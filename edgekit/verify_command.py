"""The ``verify`` Click command: emulated-aarch64 correctness of an artifact (see edgekit.stages.verify)."""

from __future__ import annotations

import click

from edgekit.cli_support import COUNT, FiniteFloat
from edgekit.errors import EdgekitError


@click.command("verify")
@click.argument("artifact", type=click.Path())
@click.option("--arch", default="arm64", show_default=True,
              help="Architecture to emulate: arm64 (aarch64), as a Raspberry Pi 4's Cortex-A72.")
@click.option("--data", type=click.Path(), help="Labelled ImageFolder tree, preprocessed as the manifest says.")
@click.option("--limit", type=COUNT, default=32, show_default=True, help="Images drawn (deterministically) from --data.")
@click.option("--samples", type=click.IntRange(1, 100_000), default=16, show_default=True,
              help="Seeded random inputs when there is no --data.")
@click.option("--tol", type=FiniteFloat(0, 1, min_open=True), default=1e-4, show_default=True,
              help="Max |diff| / max |x86 logit| allowed per model (top-1 must also agree on every input).")
@click.option("--threads", type=click.IntRange(0, 1024), default=1, show_default=True,
              help="Inference threads on both sides (0 = ORT's default).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the report as JSON.")
@click.option("--rebuild-cache", is_flag=True, help="Re-create the cached arm64 Python (rootfs + wheels).")
def verify_command(artifact, arch, data, limit, samples, tol, threads, json_path, rebuild_cache) -> None:
    """Run the artifact's ONNX Runtime models on emulated aarch64 (qemu) and compare with this machine.

    Correctness only: emulated timings are not performance numbers, so none are shown.
    """
    from edgekit.stages.verify import failure_message, print_report, verify_artifact

    report = verify_artifact(artifact, arch=arch, data=data, limit=limit, samples=samples, tol=tol,
                             threads=threads, json_path=json_path, rebuild_cache=rebuild_cache)
    print_report(report)
    if not report["passed"]:
        raise EdgekitError(failure_message(report))
