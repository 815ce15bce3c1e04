"""``train(config)``: the training stage, one process or one rank of a torchrun job.

Rank 0 alone prints, logs and writes checkpoints; every rank computes. The global batch is split
evenly over the ranks, so a run's hyper-parameters mean the same at any world size, and 1 process
with batch B takes the same optimiser steps as N processes with B/N each (up to float summation order).
The epochs are the engine's (``epochs.py``); a run adds its folder: checks, checkpoints, the log, resuming.
"""

from __future__ import annotations

import contextlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import (
    check_folder_location,
    exclusive_use,
    read_json_object,
    sweep_temp_files,
)
from edgekit.core.progress import say
from edgekit.data.folders import file_sha256
from edgekit.models import Checkpoint, ModelConfig, build_model, read_checkpoint
from edgekit.models.weights import load_weights, save_checkpoint
from edgekit.train.data import DataSource
from edgekit.train.distributed import (
    DistContext,
    barrier,
    broadcast_error,
    init_distributed,
    shutdown,
)
from edgekit.train.epochs import (
    LoopSettings,
    Session,
    check_amp,
    new_session,
    run_epochs,
    set_threads,
    uses_channels_last,
)
from edgekit.train.metrics_log import replace_text, write_log
from edgekit.train.state import (
    Progress,
    cpu_state_dict,
    read_training_checkpoint,
    restore_training,
    save_training_checkpoint,
)

RUN_SCHEMA = "edgekit.train-run/1"  # in config.json: marks a folder as an edgekit run (what --force may clear)
RUN_FILES = ("last.pt", "best.pt", "log.json", "log.csv", "config.json")


@dataclass(frozen=True)
class TrainConfig:
    """One ``edgekit train`` run: the model to build, the data to load, how to train (``loop``), and
    the run folder (``out``, ``resume``, ``force``) that fine-tuning and in-memory training do without."""

    model: ModelConfig
    data: DataSource
    loop: LoopSettings
    out: Path
    resume: bool = False
    force: bool = False
    # Trained weights to start from (a second cycle, or fine-tuning); the optimiser and schedule start fresh.
    init_weights: Path | None = None

    def run_identity(self) -> dict:
        """What a resumed run must share with the interrupted one."""
        identity = {"recipe": self.loop.recipe.to_dict(), "data": {"source": self.data.source,
                    "val_data": self.data.val_data, "val_fraction": self.data.val_fraction, "subset": self.data.subset},
                    "seed": self.loop.seed, "augment": self.data.augment, "amp": self.loop.amp}
        if self.init_weights is not None:
            # (a rank on another node may not see the file: rank 0 reads it and DDP shares the weights)
            known = self.init_weights.is_file()
            identity["init_weights"] = {"file": str(self.init_weights),
                                        "sha256": file_sha256(self.init_weights) if known else None}
        return identity


@dataclass
class TrainResult:
    out: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict] = field(default_factory=list)
    best_val_accuracy: float = 0.0


def train(config: TrainConfig) -> TrainResult:
    context = init_distributed(config.loop.device)
    try:
        return _train(config, context)
    finally:
        shutdown(context)


def output_problem(out: Path, *, resume: bool, force: bool, inputs: dict | None = None) -> str | None:
    """Why ``out`` cannot take this run, or None. A run writes into its folder as it goes (that is
    what makes it resumable), so the folder must be new, empty, or an edgekit run folder."""
    try:
        check_folder_location(out, option="--out", inputs=inputs)
    except EdgekitError as error:
        return str(error)
    if not out.is_dir() or not any(out.iterdir()):
        return None
    if not is_run_folder(out):
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:3])
        return (f"--out {out} holds files edgekit did not write ({shown}, ...); choose a new or empty folder "
                "(neither --force nor --resume touches it)")
    if (out / "last.pt").exists() and not (resume or force):
        return f"{out} already holds a training run; pass --resume to continue it or --force to start over"
    return None


def is_run_folder(folder: Path) -> bool:
    """A folder edgekit train wrote: its config.json says so (or, for runs before the schema, looks so)."""
    try:
        record = read_json_object(folder / "config.json", what="run config")
    except EdgekitError:
        return False
    return record.get("schema") == RUN_SCHEMA or {"model", "recipe", "world_size"} <= set(record)


def _check_output(config: TrainConfig, context: DistContext, inputs: dict) -> None:
    """Refuse to overwrite a run by accident, before any work; every rank raises the same one-line error."""
    message = None
    if context.is_main:
        message = output_problem(config.out, resume=config.resume, force=config.force, inputs=inputs)
    message = broadcast_error(context, message)
    if message:
        raise EdgekitError(message)


def _claim_output(config: TrainConfig, context: DistContext, inputs: dict) -> contextlib.ExitStack:
    """Rank 0 holds the run folder for the whole run (a second run into it fails at once); the folder
    is made only now, after every check passed, so a refused run leaves nothing behind."""
    held, message = contextlib.ExitStack(), None
    if context.is_main:
        try:
            config.out.mkdir(parents=True, exist_ok=True)
            held.enter_context(exclusive_use(config.out, what="edgekit train"))
            message = output_problem(config.out, resume=config.resume, force=config.force, inputs=inputs)
        except EdgekitError as error:
            message = error.one_line()
        if message is None:
            if config.force and not config.resume:
                for name in RUN_FILES:  # only what a run writes: anything else in the folder stays
                    (config.out / name).unlink(missing_ok=True)
            sweep_temp_files(config.out, RUN_FILES)
    message = broadcast_error(context, message)  # e.g. another run finished into the folder meanwhile
    if message:
        held.close()
        raise EdgekitError(message)
    return held


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build(config: TrainConfig, context: DistContext):
    import torch

    _seed_everything(config.loop.seed)  # the same initial weights on every rank and in every resumed run
    model = build_model(config.model)
    if config.loop.sync_batchnorm and context.device.type != "cuda":
        raise EdgekitError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs only on GPUs")
    if config.loop.sync_batchnorm and context.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(context.device)
    if uses_channels_last(config.loop, context):
        model = model.to(memory_format=torch.channels_last)
    return model


def _load_data(config: TrainConfig, context: DistContext):
    data = config.data.load(seed=config.loop.seed, verbose=config.loop.verbose and context.is_main,
                            may_download=context.is_main)
    if len(data.classes) != config.model.num_classes:
        raise EdgekitError(f"{config.data.source} has {len(data.classes)} classes, the model has "
                           f"{config.model.num_classes} outputs (pass --num-classes)")
    return data


def _train(config: TrainConfig, context: DistContext) -> TrainResult:
    set_threads(config.loop, context)
    check_amp(config.loop, context)
    inputs = config.data.inputs
    _check_output(config, context, inputs)
    initial = _initial_weights(config, context)
    data = _load_data(config, context)
    model = _build(config, context)
    if initial is not None:  # rank 0 only: DistributedDataParallel copies rank 0's weights to the others
        load_weights(model, initial, source=str(config.init_weights))
    session = new_session(config.loop, context, data, model)
    run = config.run_identity()
    state = Progress()
    last_path = config.out / "last.pt"
    if config.resume:
        payload = _resume_payload(context, last_path, config, run)
        state = restore_training(payload, path=last_path, model=session.model, optimizer=session.optimizer,
                                 scheduler=session.scheduler, scaler=session.scaler)
        if context.is_main and config.loop.verbose:
            say(f"resuming {last_path} at epoch {state.next_epoch + 1}/{config.loop.recipe.epochs}")
    with _claim_output(config, context, inputs):
        return _run_epochs(config, context, data, session, state, run)


def _run_epochs(config: TrainConfig, context: DistContext, data, session: Session, state: Progress,
                run: dict) -> TrainResult:
    if context.is_main:
        _write_config(config, context, data, len(session.train_loader))
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        session.trained = DistributedDataParallel(
            session.model, device_ids=[context.device] if context.device.type == "cuda" else None)

    def after_epoch(record: dict) -> None:
        state.history.append(record)
        state.next_epoch = record["epoch"]
        improved = record["val_accuracy"] > state.best_val_accuracy
        state.best_val_accuracy = max(state.best_val_accuracy, record["val_accuracy"])
        if context.is_main:
            _save_epoch(config, session, state, record, improved, run)
        barrier(context)

    run_epochs(config.loop, context, session, first_epoch=state.next_epoch, after_epoch=after_epoch)
    return TrainResult(config.out, config.out / "best.pt", config.out / "last.pt", state.history,
                       state.best_val_accuracy)


def _save_epoch(config: TrainConfig, session: Session, state: Progress, record: dict, improved: bool, run: dict) -> None:
    """Rank 0: best.pt when validation improved, last.pt always, then the log (each file atomically)."""
    preprocessing = config.data.preprocessing.to_dict()
    if improved:
        save_checkpoint(config.out / "best.pt", config.model, cpu_state_dict(session.model), preprocessing=preprocessing,
                        metrics=record, classes=session.data.classes, run=run)
    save_training_checkpoint(config.out / "last.pt", config=config.model, model=session.model,
                             preprocessing=preprocessing, optimizer=session.optimizer, scheduler=session.scheduler,
                             scaler=session.scaler, progress=state, run=run, classes=session.data.classes)
    write_log(config.out, state.history)
    if config.loop.verbose:
        _report_epoch(record, config.loop.recipe.epochs, improved)


def _initial_weights(config: TrainConfig, context: DistContext) -> dict | None:
    """--init-weights, read and fitted to the model on rank 0 before any data is loaded; any
    problem stops every rank with the same line."""
    if config.init_weights is None:
        return None
    state_dict, message = None, None
    if context.is_main:
        try:
            checkpoint = read_checkpoint(config.init_weights)
            if checkpoint.pruned_shapes:
                raise EdgekitError(f"--init-weights {config.init_weights} is a pruned model; fine-tune it with "
                                   "edgekit prune, which rebuilds its pruned layout")
            load_weights(build_model(config.model), checkpoint.state_dict, source=str(config.init_weights))
            state_dict = checkpoint.state_dict
        except EdgekitError as error:
            message = f"--init-weights: {error.one_line()}"
    message = broadcast_error(context, message)
    if message:
        raise EdgekitError(message)
    return state_dict


def _resume_payload(context: DistContext, path: Path, config: TrainConfig, run: dict) -> Checkpoint:
    """Rank 0 reads and checks the checkpoint and hands it to the others (other nodes may not see the file)."""
    payload, message = None, None
    if context.is_main:
        try:
            payload = read_training_checkpoint(path, config=config.model, run=run)
        except EdgekitError as error:
            message = error.one_line()
    message = broadcast_error(context, message)
    if message:
        raise EdgekitError(message)
    if context.distributed:
        import torch.distributed as dist

        box = [payload]
        dist.broadcast_object_list(box, src=0)
        payload = box[0]
    return payload


def _report_epoch(record: dict, epochs: int, improved: bool) -> None:
    say(f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.3f}, "
        f"train {100 * record['train_accuracy']:.1f}%, val {100 * record['val_accuracy']:.2f}%"
        f"{' (best)' if improved else ''}, lr {record['lr']:.2e}, {record['images_per_second']:.0f} img/s, "
        f"{record['seconds']:.0f} s")


def _write_config(config: TrainConfig, context: DistContext, data, steps_per_epoch: int) -> None:
    import torch

    loop = config.loop
    record = {
        "schema": RUN_SCHEMA, "model": config.model.to_dict(), "recipe": loop.recipe.to_dict(),
        "data": data.fingerprint,
        "seed": loop.seed, "augment": config.data.augment, "amp": loop.amp,
        "channels_last": uses_channels_last(loop, context), "sync_batchnorm": loop.sync_batchnorm,
        "world_size": context.world_size, "backend": context.backend, "device": str(context.device),
        "per_process_batch": loop.recipe.batch_size // context.world_size, "steps_per_epoch": steps_per_epoch,
        "threads_per_process": torch.get_num_threads(), "torch": torch.__version__,
    }
    if config.init_weights is not None:
        record["init_weights"] = config.run_identity()["init_weights"]
    replace_text(config.out / "config.json", json.dumps(record, indent=2) + "\n")
