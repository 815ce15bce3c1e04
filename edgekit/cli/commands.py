"""The ``edgekit`` command: a thin Click layer over the Python API. No pipeline logic lives here."""

from __future__ import annotations

import functools
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from edgekit import __version__
from edgekit.benchmark.table import print_bench_table
from edgekit.builder.report import print_verify_report
from edgekit.cli.config import config_option
from edgekit.cli.support import (
    COUNT,
    INPUT_SIZE,
    NON_NEGATIVE,
    NUM_CLASSES,
    SEED,
    THREADS,
    USER_FAILURES,
    FiniteFloat,
    ImageChannels,
    float_list,
    fraction,
    given_options_as_args,
    one_line_failure,
    positive_float,
)
from edgekit.core.errors import EdgekitError
from edgekit.demo import run_demo
from edgekit.diff.table import print_diff_report
from edgekit.quantize.settings import CALIBRATION_METHODS
from edgekit.runtimes.remote.ssh import Board
from edgekit.targets.isa import probe_local
from edgekit.targets.probe import probe_board
from edgekit.targets.profiles import list_targets, load_target
from edgekit.train.distributed import Launch
from edgekit.train.recipes import RECIPES, get_recipe

# The heavy stages (torch, ONNX) are imported inside the commands that run them, so that
# `edgekit --help` and a mistyped option answer at once.


class _Group(click.Group):
    """Turns a user's mistake (EdgekitError, a bad option, an OS error) into one line on stderr and a
    non-zero exit; tracebacks are for bugs."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except USER_FAILURES as error:
            message, status = one_line_failure(error)
            click.echo(f"error: {message}", err=True)
            ctx.exit(status)


def board_options(command):
    """Adds --host and friends (`build`, `bench`, `targets --probe`); the command receives `board` (None without
    --host)."""

    @click.option("--host", "address", help="Run on a board over SSH: user@board (or a ~/.ssh/config alias).")
    @click.option("--port", type=int, help="SSH port [default: 22 or ~/.ssh/config].")
    @click.option("--identity", type=click.Path(), help="Private key file [default: ssh-agent, ~/.ssh/id_*].")
    @click.option("--known-hosts", type=click.Path(), help="known_hosts file [default: ~/.ssh/known_hosts].")
    @click.option("--trust-new-host", is_flag=True,
                  help="Accept and record the board's host key if it is not in known_hosts yet.")
    @click.option("--remote-python", default="python3", show_default=True, help="Python interpreter on the board.")
    @functools.wraps(command)
    def wrapper(*args, address, port, identity, known_hosts, trust_new_host, remote_python, **kwargs):
        board = None
        if address:
            board = Board.parse(address, port=port, identity=identity, known_hosts=known_hosts,
                                trust_new_host=trust_new_host, python=remote_python)
        elif port or identity or known_hosts or trust_new_host:
            raise click.UsageError("--port/--identity/--known-hosts/--trust-new-host need --host")
        return command(*args, board=board, **kwargs)

    return wrapper


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgekit")
def cli() -> None:
    """From a PyTorch CNN to a fast, small, verified int8 model on an edge device."""


@cli.command("models")
@click.option("--filter", "pattern", default=None, help="Glob over model names, e.g. 'mobilenet*'.")
@click.option("--stats", is_flag=True, help="Add parameters and multiply-adds (torch.utils.flop_counter).")
@click.option("--all", "everything", is_flag=True,
              help="Also every torchvision classification network (-m torchvision:NAME), refused ones with why.")
def models_command(pattern: str | None, stats: bool, everything: bool) -> None:
    """List the registered models (with --all, torchvision's too)."""
    from edgekit.models import default_config, get_spec, list_models
    from edgekit.models.torchvision_zoo import listing

    table = Table(title="edgekit models" + (" (params and MACs at batch 1, default input size)" if stats else ""))
    columns = ["name", "input", "channels", "classes"] + (["params (M)", "MACs (M)"] if stats else []) + ["description"]
    for title in columns:
        table.add_column(title, justify="right" if "(M)" in title else "left")
    rows = [(name, get_spec(name), None) for name in list_models(pattern)]
    for name, spec, reason in rows + (listing(pattern) if everything else []):
        if spec is None:
            table.add_row(name, "", "", "", *(["", ""] if stats else []), f"refused: {reason}")
            continue
        row = [name, f"{spec.input_size}x{spec.input_size}", str(spec.in_channels), str(spec.num_classes)]
        if stats:
            from edgekit.models.stats import model_stats

            counted = model_stats(default_config(name))
            row += [f"{counted['params'] / 1e6:.3f}", f"{counted['macs'] / 1e6:.1f}"]
        table.add_row(*row, spec.description)
    Console(width=max(Console().width, 140)).print(table)


@cli.command("targets")
@click.option("--probe", is_flag=True,
              help="Also read this CPU's (or, with --host, a board's) int8 instructions and say whether int8 pays off.")
@board_options
def targets_command(probe: bool, board) -> None:
    """List the target profiles (targets/*.toml) with their settings."""
    if board is not None and not probe:
        raise click.UsageError("--host goes with --probe")
    if probe:
        if board is None:
            report, where = probe_local(), "this host"
        else:
            report, label = probe_board(board)
            where = f"board {label}"
        click.echo(f"{where}: {report.arch}, {report.model_name}; int8 instructions: "
                   f"{', '.join(report.int8_features) or 'none'}")
        click.echo(f"verdict: {report.verdict()}")

    table = Table(title="edgekit targets")
    for title in ("name", "arch", "runtime", "threads", "int8 settings", "description"):
        table.add_column(title)
    for name in list_targets():
        target = load_target(name)
        quant = ", ".join(f"{k}={v}" for k, v in target.quantization.to_dict().items())
        table.add_row(name, target.arch, target.runtime, str(target.threads), quant, target.description)
    Console().print(table)


@cli.command("build")
@config_option(path_suffixes={"model": ".onnx", "target": ".toml"})
@click.option("--model", "-m", required=True,
              help="Registered name, torchvision:NAME, path/to/file.py:function, package.module:function "
                   "(called with num_classes=, in_channels=; needs --input-size), or an .onnx file.")
@click.option("--target", "-t", required=True, help="Target profile name (see `edgekit targets`) or a .toml path.")
@click.option("--calib", type=click.Path(), help="Calibration images: ImageFolder tree or flat folder.")
@click.option("--calib-size", type=COUNT, default=300, show_default=True, help="Images drawn (deterministically) for calibration.")
@click.option("--calib-method", type=click.Choice(CALIBRATION_METHODS),
              help="Override the target's calibration method (ONNX Runtime targets).")
@click.option("--weights", type=click.Path(dir_okay=False), help="state_dict or edgekit checkpoint (loaded weights_only).")
@click.option("--pretrained", is_flag=False, flag_value="DEFAULT", default=None, metavar="[TAG]",
              help="torchvision:NAME only: its published weights (TAG e.g. IMAGENET1K_V1) [default TAG: DEFAULT], "
                   "from the torch hub cache or downloaded into it.")
@click.option("--out", "-o", type=click.Path(), help="Artifact folder [default: artifacts/<model>-<target>].")
@click.option("--num-classes", type=NUM_CLASSES, help="Classifier size [default: the model's].")
@click.option("--classes", metavar="NAMES|DIR", help="Names of the outputs in order, as a,b,c or the training "
              "ImageFolder (its sorted class folders), for weights or an .onnx that record none [default: the "
              "checkpoint's]. bench, diff and --val match class folders to outputs by these names.")
@click.option("--in-channels", type=ImageChannels(), help="Input channels, 1 or 3 [default: the model's].")
@click.option("--input-size", type=INPUT_SIZE, help="Square input size in pixels [default: the model's].")
@click.option("--mean", callback=float_list(), help="Per-channel mean, e.g. 0.485,0.456,0.406.")
@click.option("--std", callback=float_list(positive=True), help="Per-channel std (> 0).")
@click.option("--exporter", type=click.Choice(["legacy", "dynamo"]), default="legacy", show_default=True)
@click.option("--opset", type=click.IntRange(13, 23), help="ONNX opset [default: 17 legacy, 18 dynamo].")
@click.option("--parity-tol", type=FiniteFloat(0, 1, min_open=True), default=1e-4, show_default=True,
              help="Max |ORT-PyTorch| / max|logit| allowed.")
@click.option("--fp32-only", is_flag=True, help="Build without int8 (no calibration needed).")
@click.option("--max-drop", type=FiniteFloat(0, 100), metavar="POINTS",
              help="Plan int8: measure candidate plans, ship the best within this top-1 loss (percentage points).")
@click.option("--val", type=click.Path(), help="With --max-drop: labelled held-out ImageFolder to judge accuracy on "
              "[default: agreement with fp32 on held-out --calib images].")
@click.option("--val-size", type=COUNT, default=2000, show_default=True, help="Max --val images (deterministic sample).")
@click.option("--objective", type=click.Choice(["latency", "size"]), default="latency", show_default=True,
              help="With --max-drop: what the shipped plan minimises within the budget.")
@click.option("--plan-budget", type=FiniteFloat(1, 86400), metavar="SECONDS",
              help="With --max-drop: wall-clock budget for the candidates [default: 6x a plain build, >= 60 s].")
@click.option("--no-latency-check", is_flag=True, help="Skip the fp32-vs-int8 timing during the build.")
@click.option("--no-rewrite", is_flag=True,
              help="Skip the exact graph rewrites between simplify and quantize (edgekit.rewrite).")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@board_options
def build_command(model, target, calib, calib_size, calib_method, weights, pretrained, out, num_classes, classes,
                  in_channels, input_size, mean, std, exporter, opset, parity_tol, fp32_only, max_drop, val, val_size,
                  objective, plan_budget, no_latency_check, no_rewrite, force, board) -> None:
    """Build a self-describing artifact folder (fp32 + int8 models, manifest, report) for a target.

    With --host, the latency check and every int8 plan --max-drop tries are timed on the board over
    SSH (ONNX Runtime targets; the board needs python3, numpy and onnxruntime only).
    """
    from edgekit.builder.pipeline import BuildOptions, build_artifact

    options = BuildOptions(calib=calib, calib_size=calib_size, exporter=exporter, opset=opset,
                           calibration_method=calib_method, parity_tolerance=parity_tol, fp32_only=fp32_only,
                           max_drop=max_drop, val=val, val_size=val_size, objective=objective,
                           plan_budget=plan_budget, check_latency=not no_latency_check, rewrite=not no_rewrite,
                           force=force)
    path = build_artifact(model, target, out, weights=weights, pretrained=pretrained, num_classes=num_classes,
                          in_channels=in_channels, input_size=input_size, mean=mean, std=std, classes=classes,
                          board=board, options=options)
    click.echo(str(path))


@cli.command("bench")
@click.argument("artifact", type=click.Path())
@config_option()
@click.option("--data", type=click.Path(), help="Labelled ImageFolder tree for top-1 accuracy and agreement.")
@click.option("--limit", type=COUNT, default=1000, show_default=True, help="Max evaluation images (deterministic sample).")
@click.option("--runs", type=COUNT, default=200, show_default=True, help="Timed runs per model after warm-up.")
@click.option("--warmup", type=NON_NEGATIVE, default=20, show_default=True)
@click.option("--threads", type=THREADS, help="Inference threads [default: the target's].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write results as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Write results as CSV.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False),
              help="Write a Markdown report: the table, host, versions, what was recommended and why.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write a PNG: p50 latency vs top-1 and vs size, one labelled point per model.")
@board_options
def bench_command(artifact, data, limit, runs, warmup, threads, json_path, csv_path, report_path, plot_path,
                  board) -> None:
    """Latency, throughput, memory, size and accuracy of every model in an artifact.

    With --host, the artifact's ONNX Runtime models and a small runner are copied to the board over
    SSH and measured there (the board needs python3, numpy and onnxruntime only).
    """
    from edgekit.benchmark.run import bench_artifact

    report = bench_artifact(artifact, data=data, limit=limit, runs=runs, warmup=warmup, threads=threads,
                            json_path=json_path, csv_path=csv_path, report_path=report_path, plot_path=plot_path,
                            board=board)
    print_bench_table(report)
    if any(not row.get("ok") for row in report["results"]):
        raise EdgekitError("some models failed to run (see the table)")


@cli.command("search")
@click.option("--data", required=True, type=click.Path(), help="Labelled ImageFolder tree (split per class).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Folder for results, checkpoints, best config.")
@click.option("--model", "-m", default="mobilenet_v2_rs_cifar", show_default=True)
@click.option("--input-size", type=INPUT_SIZE, default=32, show_default=True)
@click.option("--grayscale", is_flag=True, help="Load images as 1 channel (else RGB).")
@click.option("--derived", multiple=True, type=click.Choice(["edges"]),
              help="Extra input channel computed from the image (the split step's second stream).")
@click.option("--val-fraction", type=fraction(), default=0.2, show_default=True)
@click.option("--root-epochs", type=NON_NEGATIVE, default=30, show_default=True,
              help="Epochs to train the unmodified root model.")
@click.option("--epochs", type=COUNT, default=8, show_default=True, help="Training budget per candidate, in epochs...")
@click.option("--minutes", type=positive_float(),
              help="...and/or in minutes (stops at the first epoch boundary past it).")
@click.option("--lr", type=positive_float(10), default=3e-3, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Candidates trained concurrently (processes).")
@click.option("--max-rounds", type=NON_NEGATIVE, default=2, show_default=True, help="Greedy replication rounds at most.")
@click.option("--max-candidates", type=COUNT, help="Per round, only the first N eligible blocks / split positions.")
@click.option("--max-params", type=COUNT, help="Parameter budget for replicated models.")
@click.option("--max-split", type=COUNT, default=6, show_default=True, help="Largest split position tried in step 2.")
@click.option("--merge", type=click.Choice(["concat_half", "concat"]), default="concat_half", show_default=True)
@click.option("--target", "-t", default="cpu", show_default=True, help="Target whose int8 latency is measured.")
@click.option("--latency-weight", type=FiniteFloat(0), default=0.0, show_default=True,
              help="Objective: accuracy % minus this x int8 p50 ms (0 = the paper's accuracy-only search).")
@click.option("--repeats", type=COUNT, default=1, show_default=True,
              help="Seeds per candidate; a step adopts a child only when its gain over the control is significant.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Train candidates in processes here, or as Ray tasks (pip install edgekit[ray]).")
@click.option("--ray-address", help="HOST:PORT of a Ray head (`ray start --head`) [default: an embedded local Ray].")
@click.option("--cpus-per-candidate", type=THREADS,
              help="Threads per training, and a Ray task's CPUs [default: this machine's cores / --workers].")
@click.option("--gpus-per-candidate", type=FiniteFloat(0, 1024), default=0.0, show_default=True,
              help="GPUs a Ray task asks for (> 0 trains on CUDA); --executor ray only.")
@click.option("--force", is_flag=True, help="Replace an existing search folder (one edgekit wrote).")
def search_command(data, out, model, input_size, grayscale, derived, val_fraction, root_epochs, epochs, minutes, lr,
                   workers, max_rounds, max_candidates, max_params, max_split, merge, target, latency_weight,
                   repeats, executor, ray_address, cpus_per_candidate, gpus_per_candidate, force) -> None:
    """Two-step search: greedy block replication, then the input-split position."""
    from edgekit.search import SearchSettings, run_search
    from edgekit.search.report import print_search_results

    settings = SearchSettings(model=model, input_size=input_size, grayscale=grayscale, derived=tuple(derived),
                              val_fraction=val_fraction, root_epochs=root_epochs, epochs=epochs, minutes=minutes,
                              lr=lr, workers=workers, max_rounds=max_rounds, max_candidates=max_candidates,
                              max_params=max_params,
                              max_split=max_split, merge=merge, target=target, latency_weight=latency_weight,
                              repeats=repeats, executor=executor, ray_address=ray_address,
                              cpus_per_candidate=cpus_per_candidate, gpus_per_candidate=gpus_per_candidate)
    print_search_results(run_search(data, out, settings, force=force))


@cli.command("train")
@click.option("--model", "-m", required=True,
              help="Registered name (see `edgekit models`), torchvision:NAME, or file.py:function (needs --input-size).")
@click.option("--data", required=True, help="ImageFolder tree (split into train/val), or 'cifar10' (torchvision).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Run folder: last.pt, best.pt, log.json/csv.")
@click.option("--preset", type=click.Choice(sorted(RECIPES)), default="sgd-onecycle", show_default=True,
              help="Optimiser + schedule from the papers (see docs/training.md).")
@click.option("--epochs", type=click.IntRange(1, 100_000), help="[default: the preset's]")
@click.option("--batch-size", type=COUNT, help="Global batch over all processes [default: the preset's].")
@click.option("--lr", type=positive_float(10), help="Peak/initial learning rate [default: the preset's].")
@click.option("--weight-decay", type=FiniteFloat(0, 1), help="[default: the preset's]")
@click.option("--val-fraction", type=fraction(), default=0.1, show_default=True,
              help="Per-class share of --data held out.")
@click.option("--val-data", type=click.Path(), help="Separate validation ImageFolder (then --data is all training).")
@click.option("--subset", type=COUNT, help="Train on a deterministic sample of this many training images.")
@click.option("--num-classes", type=NUM_CLASSES, help="[default: the number of class folders]")
@click.option("--in-channels", type=ImageChannels(), help="1 for grayscale [default: the model's].")
@click.option("--input-size", type=INPUT_SIZE, help="[default: the model's]")
@click.option("--option", multiple=True, help="Model builder option KEY=JSON, e.g. replications=[3,13].")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--augment/--no-augment", default=True, show_default=True, help="RandomCrop (pad 4 at 32 px) + flip.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["off", "bf16", "fp16"]), default="off", show_default=True,
              help="Mixed precision (fp16 with a grad scaler, CUDA only).")
@click.option("--channels-last/--no-channels-last", default=None, help="[default: on for CUDA]")
@click.option("--sync-bn", is_flag=True, help="SyncBatchNorm across processes.")
@click.option("--threads", type=THREADS, help="Intra-op threads per process [default: cores / local processes].")
@click.option("--workers", type=click.IntRange(0, 256), default=0, show_default=True,
              help="DataLoader worker processes per rank.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from last.pt.")
@click.option("--init-weights", type=click.Path(dir_okay=False),
              help="Start from these weights (edgekit checkpoint or state_dict, loaded weights_only) with a "
                   "fresh optimiser and schedule: a second cycle, or fine-tuning.")
@click.option("--force", is_flag=True, help="Start over in an --out that holds a run.")
@click.option("--download", is_flag=True, help="Let torchvision download CIFAR-10 (needs internet).")
@click.option("--nproc", type=click.IntRange(1, 1024), default=1, show_default=True,
              help="Processes on this node; > 1 launches torchrun.")
@click.option("--nnodes", type=click.IntRange(1, 100_000), default=1, show_default=True,
              help="Nodes in the job (run the same command on each).")
@click.option("--rdzv-endpoint", help="HOST:PORT of the rendezvous for --nnodes > 1.")
@click.pass_context
def train_command(ctx, model, data, out, preset, epochs, batch_size, lr, weight_decay, val_fraction, val_data, subset,
                  num_classes, in_channels, input_size, option, seed, augment, device, amp, channels_last, sync_bn,
                  threads, workers, resume, init_weights, force, download, nproc, nnodes, rdzv_endpoint) -> None:
    """Train a registered model (CPU, or CUDA with DDP through torchrun); writes checkpoints and a log."""
    from edgekit.train.data import DataSource
    from edgekit.train.epochs import LoopSettings
    from edgekit.train.loop import TrainConfig, train
    from edgekit.train.start import (
        is_rank_zero,
        launch_ranks,
        model_and_preprocessing,
        under_torchrun,
    )

    config, preprocessing = model_and_preprocessing(model, data, num_classes=num_classes, in_channels=in_channels,
                                                    input_size=input_size, options=option)
    recipe = get_recipe(preset).with_overrides(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay)
    if (nproc > 1 or nnodes > 1) and not under_torchrun():
        # The ranks get the user's own options back; the launch options are torchrun's, not theirs.
        rank_args = given_options_as_args(ctx, skip=("nproc", "nnodes", "rdzv_endpoint"))
        launch_ranks(Launch(nproc, nnodes, rdzv_endpoint), recipe, rank_args, out=Path(out), data=data,
                     val_data=val_data, resume=resume, force=force)
        return
    loop = LoopSettings(recipe=recipe, seed=seed, device=device, amp=amp, channels_last=channels_last,
                        sync_batchnorm=sync_bn, threads=threads, workers=workers)
    source = DataSource(data, preprocessing, val_fraction=val_fraction, val_data=val_data, subset=subset,
                        augment=augment, download=download)
    result = train(TrainConfig(model=config, data=source, loop=loop, out=Path(out), resume=resume, force=force,
                               init_weights=Path(init_weights) if init_weights else None))
    if is_rank_zero():
        click.echo(str(result.best_checkpoint))


@cli.command("verify")
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
    """Run the artifact's ONNX Runtime and OpenVINO models on emulated aarch64 (qemu); compare with this machine.

    Correctness only: emulated timings are not performance numbers, so none are shown.
    """
    from edgekit.builder.verify import failure_message, verify_artifact

    report = verify_artifact(artifact, arch=arch, data=data, limit=limit, samples=samples, tol=tol,
                             threads=threads, json_path=json_path, rebuild_cache=rebuild_cache)
    print_verify_report(report)
    if not report["passed"]:
        raise EdgekitError(failure_message(report))




@cli.command("diff")
@click.argument("artifact", type=click.Path())
@click.option("--data", type=click.Path(),
              help="Images (ImageFolder tree for accuracy, or a flat folder) [default: the calibration folder].")
@click.option("--images", type=click.IntRange(1, 100_000), default=64, show_default=True,
              help="Images for the per-layer comparison (every intermediate tensor is computed).")
@click.option("--output-images", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="Images for the output comparison across runtimes.")
@click.option("--top", type=click.IntRange(1, 10_000), default=15, show_default=True,
              help="Tensors shown in the table (the JSON has all).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write the whole report as JSON.")
@click.option("--output-cost/--no-output-cost", default=True, show_default=True,
              help="Also run each Q/DQ pair alone in the fp32 model (one run per pair) and rank the pairs "
                   "by the error they cause at the output.")
@click.option("--speed/--no-speed", default=True, show_default=True,
              help="Also profile the ONNX Runtime fp32 and int8 models node by node and name the int8 model's "
                   "slowest nodes by pattern (depthwise multiplier, float BN, shuffle, grouped conv).")
def diff_command(artifact, data, images, output_images, top, json_path, output_cost, speed) -> None:
    """Where int8 loses accuracy: every tensor int8 vs fp32 (SQNR, the loss each node adds, fused
    int8 kernels), and the outputs of PyTorch, ONNX Runtime and OpenVINO on the same images; and where
    it loses speed: the slowest int8 nodes and the pattern that makes them slow."""
    from edgekit.diff.run import diff_artifact

    report = diff_artifact(artifact, data=data, images=images, output_images=output_images, json_path=json_path,
                           output_cost=output_cost, speed=speed)
    print_diff_report(report, top=top)


@cli.command("prune")
@click.option("--weights", "-w", required=True, type=click.Path(dir_okay=False),
              help="edgekit checkpoint (e.g. best.pt of a run).")
@click.option("--data", required=True, help="The ImageFolder tree it was trained on (same split), or 'cifar10'.")
@click.option("--out", "-o", required=True, type=click.Path(), help="Folder for pruned.pt and prune_report.json.")
@click.option("--method", type=click.Choice(["channels", "l1-unstructured"]), default="channels", show_default=True,
              help="channels: torch-pruning structured (smaller, faster); l1-unstructured: the paper's global L1.")
@click.option("--sparsity", type=fraction(), required=True,
              help="channels: fraction of channels removed; l1-unstructured: conv-weight sparsity to reach.")
@click.option("--amount", type=fraction(), default=0.2, show_default=True,
              help="l1-unstructured: share of remaining weights per round.")
@click.option("--finetune-epochs", type=COUNT, default=1, show_default=True, help="Per round (unstructured) / after pruning.")
@click.option("--finetune-subset", type=COUNT, help="Fine-tune on a deterministic sample of the training split.")
@click.option("--lr", type=positive_float(10), default=0.01, show_default=True,
              help="Fine-tuning peak learning rate (SGD, one-cycle).")
@click.option("--batch-size", type=click.IntRange(min=2), default=128, show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def prune_command(weights, data, out, method, sparsity, amount, finetune_epochs, finetune_subset, lr, batch_size,
                  force) -> None:
    """Prune a trained checkpoint and fine-tune it; the result builds like any checkpoint."""
    from edgekit.prune.run import PruneSettings, prune_checkpoint
    from edgekit.prune.table import print_prune_rounds

    settings = PruneSettings(method=method, sparsity=sparsity, amount=amount, finetune_epochs=finetune_epochs,
                             finetune_subset=finetune_subset, lr=lr, batch_size=batch_size, force=force)
    result = prune_checkpoint(weights, data, out, settings)
    print_prune_rounds(result)
    click.echo(str(result.checkpoint))


@cli.command("demo")
@click.option("--workdir", type=click.Path(), default="demo-output", show_default=True)
@click.option("--epochs", default=None, type=click.IntRange(1, 1000), help="Training epochs [default: the demo's].")
def demo_command(workdir, epochs) -> None:
    """Offline end-to-end run: train on scikit-learn's digits, build for cpu, bench with accuracy."""
    run_demo(workdir, epochs=epochs)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (kill, timeout, a CI cancel) into SystemExit so that temp folders are cleaned up."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def main() -> None:
    exit_on_sigterm()
    cli(prog_name="edgekit")


if __name__ == "__main__":
    sys.exit(main())
