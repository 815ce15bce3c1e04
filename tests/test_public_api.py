"""The public surface, pinned: `edgekit.__all__`, the Python API's signatures, and every CLI command with
its options. Moving modules must not change any of it; a change here is a deliberate API change."""

from __future__ import annotations

import inspect
import tomllib
from pathlib import Path

import click

import edgekit

ROOT = Path(__file__).resolve().parents[1]

ALL = ["EdgekitError", "__version__", "build", "bench"]

BUILD_PARAMETERS = ["model", "target", "out", "weights", "pretrained", "num_classes", "in_channels", "input_size",
                    "mean", "std", "classes", "board", "options"]
BENCH_PARAMETERS = ["artifact", "data", "limit", "runs", "warmup", "threads", "json_path", "csv_path",
                    "report_path", "plot_path", "board"]

COMMANDS = {
    "": ["--version"],
    "bench": ["--config", "--csv", "--data", "--host", "--identity", "--json", "--known-hosts", "--limit", "--plot",
              "--port", "--remote-python", "--report", "--runs", "--threads", "--trust-new-host", "--warmup",
              "ARTIFACT"],
    "build": ["--calib", "--calib-method", "--calib-size", "--classes", "--config", "--exporter", "--force", "--fp32-only",
              "--host", "--identity", "--in-channels", "--input-size", "--known-hosts", "--max-drop", "--mean", "--model",
              "--no-latency-check", "--no-rewrite", "--num-classes", "--objective", "--opset", "--out", "--parity-tol", "--plan-budget",
              "--port", "--pretrained", "--remote-python", "--std", "--target", "--trust-new-host", "--val",
              "--val-size", "--weights", "-m", "-o", "-t"],
    "demo": ["--epochs", "--workdir"],
    "diff": ["--data", "--images", "--json", "--no-output-cost", "--no-speed", "--output-cost", "--output-images",
             "--speed", "--top", "ARTIFACT"],
    "models": ["--all", "--filter", "--stats"],
    "prune": ["--amount", "--batch-size", "--data", "--finetune-epochs", "--finetune-subset", "--force", "--lr",
              "--method", "--out", "--sparsity", "--weights", "-o", "-w"],
    "search": ["--cpus-per-candidate", "--data", "--derived", "--epochs", "--executor", "--force",
               "--gpus-per-candidate", "--grayscale", "--input-size", "--latency-weight", "--lr", "--max-candidates",
               "--max-params", "--max-rounds", "--max-split", "--merge", "--minutes", "--model", "--out",
               "--ray-address", "--repeats", "--root-epochs", "--target", "--val-fraction", "--workers", "-m", "-o",
               "-t"],
    "targets": ["--host", "--identity", "--known-hosts", "--port", "--probe", "--remote-python", "--trust-new-host"],
    "train": ["--amp", "--augment", "--batch-size", "--channels-last", "--data", "--device", "--download",
              "--epochs", "--force", "--in-channels", "--init-weights", "--input-size", "--lr", "--model",
              "--nnodes", "--no-augment", "--no-channels-last", "--nproc", "--num-classes", "--option", "--out",
              "--preset", "--rdzv-endpoint", "--resume", "--seed", "--subset", "--sync-bn", "--threads",
              "--val-data", "--val-fraction", "--weight-decay", "--workers", "-m", "-o"],
    "verify": ["--arch", "--data", "--json", "--limit", "--rebuild-cache", "--samples", "--threads", "--tol",
               "ARTIFACT"],
}


def _surface(command: click.Command) -> list[str]:
    """What a user types: every option spelling (both sides of --x/--no-x) and the arguments' names."""
    names = []
    for param in command.params:
        names += [param.human_readable_name] if isinstance(param, click.Argument) else [*param.opts,
                                                                                         *param.secondary_opts]
    return sorted(names)


def test_the_package_exports_exactly_the_public_names():
    assert edgekit.__all__ == ALL
    assert isinstance(edgekit.__version__, str)
    assert issubclass(edgekit.EdgekitError, Exception)


def test_build_and_bench_stay_functions_with_their_signatures():
    # Importing the rooms that implement them must not shadow the functions with sub-packages.
    import edgekit.benchmark.run  # noqa: F401
    import edgekit.builder.pipeline  # noqa: F401

    assert inspect.isfunction(edgekit.build) and inspect.isfunction(edgekit.bench)
    from edgekit.benchmark.run import bench_artifact
    from edgekit.builder.pipeline import build_artifact

    assert list(inspect.signature(build_artifact).parameters) == BUILD_PARAMETERS
    assert list(inspect.signature(bench_artifact).parameters) == BENCH_PARAMETERS
    assert inspect.signature(build_artifact).return_annotation == "Path"
    assert inspect.signature(bench_artifact).return_annotation == "dict"


def test_the_console_script_is_edgekit_cli_main():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"edgekit": "edgekit.cli:main"}
    from edgekit.cli import main

    assert callable(main)


def test_every_command_and_option_is_pinned():
    from edgekit.cli import cli

    assert isinstance(cli, click.Group)
    found = {"": _surface(cli), **{name: _surface(command) for name, command in cli.commands.items()}}
    assert found == COMMANDS
