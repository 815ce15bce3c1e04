"""The ``train`` Click command, shared by ``edgekit train`` and ``python -m edgekit.train`` (torchrun's -m)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from edgekit.cli_support import (COUNT, INPUT_SIZE, NUM_CLASSES, SEED, THREADS, USER_FAILURES, FiniteFloat,
                                 ImageChannels, fraction, one_line_failure, positive_float)
from edgekit.errors import EdgekitError
from edgekit.train.data import CIFAR10
from edgekit.train.recipes import RECIPES

# Options that steer the launcher; everything else is forwarded to every rank unchanged.
LAUNCH_OPTIONS = ("nproc", "nnodes", "rdzv_endpoint")


def _under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def forwarded_args(ctx: click.Context) -> list[str]:
    """The options the user gave, as arguments again (for the ranks torchrun starts)."""
    from click.core import ParameterSource

    args = []
    for param in ctx.command.params:
        name = param.name
        if name in LAUNCH_OPTIONS or not isinstance(param, click.Option):
            continue
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            continue
        value = ctx.params[name]
        if param.is_flag:
            flag = param.opts[0] if value else (param.secondary_opts[0] if param.secondary_opts else None)
            if flag:
                args.append(flag)
        elif param.multiple:
            for item in value:
                args += [param.opts[0], str(item)]
        else:
            args += [param.opts[0], str(value)]
    return args


def _model_options(pairs: tuple[str, ...]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise EdgekitError(f"--option expects KEY=JSON, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError as error:
            raise EdgekitError(f"--option {key}: {value!r} is not JSON ({error.msg})") from error
    return options


def _count_classes(data: str) -> int:
    from edgekit.data.folders import find_images

    if data == CIFAR10:
        return 10
    images = find_images(data, purpose="training data")
    if images.labels is None:
        raise EdgekitError(f"training data {data} must be an ImageFolder tree: one sub-folder per class")
    return len(images.classes)


def _model_and_preprocessing(model, data, num_classes, in_channels, input_size, option):
    from edgekit.models import default_config, get_spec

    get_spec(model)  # an unknown model is reported before the data folder is scanned
    config = default_config(model, num_classes=num_classes or _count_classes(data), in_channels=in_channels,
                            input_size=input_size, options=_model_options(option))
    preprocessing = get_spec(model).preprocessing(input_size=config.input_size, in_channels=config.in_channels)
    return config, preprocessing


@click.command("train")
@click.option("--model", "-m", required=True, help="Registered model name (see `edgekit models`).")
@click.option("--data", required=True, help="ImageFolder tree (split into train/val), or 'cifar10' (torchvision).")
@click.option("--out", "-o", required=True, type=click.Path(), help="Run folder: last.pt, best.pt, log.json/csv.")
@click.option("--preset", type=click.Choice(sorted(RECIPES)), default="sgd-onecycle", show_default=True,
              help="Optimiser + schedule from the papers (see README).")
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
                  threads, workers, resume, force, download, nproc, nnodes, rdzv_endpoint) -> None:
    """Train a registered model (CPU, or CUDA with DDP through torchrun); writes checkpoints and a log."""
    from edgekit.train.data import DataSource
    from edgekit.train.epochs import LoopSettings
    from edgekit.train.loop import TrainConfig, output_problem, train
    from edgekit.train.recipes import get_recipe

    config, preprocessing = _model_and_preprocessing(model, data, num_classes, in_channels, input_size, option)
    recipe = get_recipe(preset).with_overrides(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay)
    if (nproc > 1 or nnodes > 1) and not _under_torchrun():
        from edgekit.train.distributed import Launch, launch_with_torchrun

        # Fail here with one line rather than in every rank under torchrun's failure report.
        world_size = nproc * nnodes
        if recipe.batch_size % world_size:
            raise EdgekitError(f"batch size {recipe.batch_size} is the global batch and must divide evenly over "
                               f"{world_size} processes")
        problem = output_problem(Path(out), resume=resume, force=force,
                                 inputs={"training data": None if data == CIFAR10 else data, "validation data": val_data})
        if problem:
            raise EdgekitError(problem)
        status = launch_with_torchrun(Launch(nproc, nnodes, rdzv_endpoint), forwarded_args(ctx))
        if status:
            raise EdgekitError(f"torchrun exited with status {status} (the ranks' errors are above)")
        return
    loop = LoopSettings(recipe=recipe, seed=seed, device=device, amp=amp, channels_last=channels_last,
                        sync_batchnorm=sync_bn, threads=threads, workers=workers)
    source = DataSource(data, preprocessing, val_fraction=val_fraction, val_data=val_data, subset=subset,
                        augment=augment, download=download)
    result = train(TrainConfig(model=config, data=source, loop=loop, out=Path(out), resume=resume, force=force))
    if _is_rank_zero():
        click.echo(str(result.best_checkpoint))


def _is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def main() -> None:
    """``python -m edgekit.train``: the same command, with edgekit's one-line errors."""
    import sys

    try:
        train_command.main(prog_name="python -m edgekit.train", standalone_mode=False)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
    except USER_FAILURES as error:
        message, status = one_line_failure(error)
        click.echo(f"error: {message}", err=True)
        sys.exit(status)
