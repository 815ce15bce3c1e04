"""``train(config)``: the training stage, one process or one rank of a torchrun job.

Rank 0 alone prints, logs and writes checkpoints; every rank computes. The global batch is split
evenly over the ranks, so a run's hyper-parameters mean the same at any world size, and 1 process
with batch B takes the same optimiser steps as N processes with B/N each (up to float summation order).
"""

from __future__ import annotations

import contextlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.data.preprocessing import Preprocessing
from edgekit.checks import require_int, require_number
from edgekit.errors import EdgekitError
from edgekit.outputs import check_folder_location, exclusive_use, is_within, read_json_object, sweep_temp_files
from edgekit.models import Checkpoint, ModelConfig, build_model
from edgekit.models.weights import save_checkpoint
from edgekit.progress import progress, say
from edgekit.train.data import CIFAR10, load_training_data
from edgekit.train.distributed import (DistContext, all_reduce_max, all_reduce_sums, barrier, broadcast_error,
                                       init_distributed, shutdown)
from edgekit.train.metrics_log import replace_text, write_log
from edgekit.train.recipes import Recipe, make_optimizer, make_scheduler
from edgekit.train.state import (Progress, cpu_state_dict, read_training_checkpoint, restore_training,
                                 save_training_checkpoint)

AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
RUN_SCHEMA = "edgekit.train-run/1"  # in config.json: marks a folder as an edgekit run (what --force may clear)
RUN_FILES = ("last.pt", "best.pt", "log.json", "log.csv", "config.json")


@dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig
    preprocessing: Preprocessing
    data: str  # an ImageFolder tree, or "cifar10"
    out: Path
    recipe: Recipe
    val_fraction: float = 0.1
    val_data: str | None = None
    subset: int | None = None  # train on a deterministic sample of the training split
    seed: int = 0
    augment: bool = True
    device: str = "auto"
    amp: str = "off"  # off | bf16 | fp16
    channels_last: bool | None = None  # None: on CUDA only, where cuDNN's NHWC kernels are faster
    sync_batchnorm: bool = False
    threads: int | None = None
    workers: int = 0
    resume: bool = False
    force: bool = False
    download: bool = False
    verbose: bool = True

    def __post_init__(self) -> None:
        recipe = self.recipe
        require_int("--epochs", recipe.epochs, 1, 100_000)
        require_int("--batch-size", recipe.batch_size, 1, 1 << 20)
        require_number("--lr", recipe.lr, 0, 10, low_open=True)
        require_number("--weight-decay", recipe.weight_decay, 0, 1)
        require_number("--val-fraction", self.val_fraction, 0, 1, low_open=True, high_open=True)
        require_int("--subset", self.subset, 1, optional=True)
        require_int("--seed", self.seed, 0, 2**32 - 1)
        require_int("--threads", self.threads, 1, 1024, optional=True)
        require_int("--workers", self.workers, 0, 256)
        if self.val_data is not None and self.data != CIFAR10:
            train, val = Path(self.data).resolve(), Path(self.val_data).resolve()
            if is_within(train, val) or is_within(val, train):
                # Validating on training images would report a meaningless accuracy.
                raise EdgekitError(f"--val-data {self.val_data} overlaps --data {self.data}; give a separate folder")

    def run_identity(self) -> dict:
        """What a resumed run must share with the interrupted one."""
        return {"recipe": self.recipe.to_dict(), "data": {"source": self.data, "val_data": self.val_data,
                "val_fraction": self.val_fraction, "subset": self.subset}, "seed": self.seed,
                "augment": self.augment, "amp": self.amp}


@dataclass
class TrainResult:
    out: Path
    best_checkpoint: Path
    last_checkpoint: Path
    history: list[dict] = field(default_factory=list)
    best_val_accuracy: float = 0.0


def train(config: TrainConfig) -> TrainResult:
    context = init_distributed(config.device)
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


def _set_threads(config: TrainConfig, context: DistContext) -> None:
    import os

    import torch

    if config.threads:
        torch.set_num_threads(config.threads)
    elif context.device.type == "cpu" and context.local_world_size > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // context.local_world_size))


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build(config: TrainConfig, context: DistContext):
    import torch

    _seed_everything(config.seed)  # the same initial weights on every rank and in every resumed run
    model = build_model(config.model)
    if config.sync_batchnorm and context.device.type != "cuda":
        raise EdgekitError("--sync-bn needs CUDA: PyTorch's SyncBatchNorm runs only on GPUs")
    if config.sync_batchnorm and context.distributed:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(context.device)
    if _channels_last(config, context):
        model = model.to(memory_format=torch.channels_last)
    return model


def _channels_last(config: TrainConfig, context: DistContext) -> bool:
    return context.device.type == "cuda" if config.channels_last is None else config.channels_last


def _check_amp(config: TrainConfig, context: DistContext) -> None:
    if config.amp != "off" and config.amp not in AMP_DTYPES:
        raise EdgekitError(f"unknown --amp {config.amp!r}; expected off, bf16 or fp16")
    if config.amp == "fp16" and context.device.type != "cuda":
        raise EdgekitError("--amp fp16 needs a CUDA device; use --amp bf16 on CPU")


def _autocast(config: TrainConfig, context: DistContext):
    import torch

    if config.amp == "off":
        return torch.autocast(context.device.type, enabled=False)
    return torch.autocast(context.device.type, dtype=getattr(torch, AMP_DTYPES[config.amp]))


def make_loaders(config: TrainConfig, context: DistContext, data):
    from torch.utils.data import DataLoader, DistributedSampler

    if config.recipe.batch_size % context.world_size:
        raise EdgekitError(f"batch size {config.recipe.batch_size} is the global batch and must divide evenly "
                           f"over {context.world_size} processes")
    per_rank = config.recipe.batch_size // context.world_size
    sampler = DistributedSampler(data.train, num_replicas=context.world_size, rank=context.rank,
                                 shuffle=True, seed=config.seed)
    # drop_last: BatchNorm cannot train on a final batch of one image.
    train_loader = DataLoader(data.train, batch_size=per_rank, sampler=sampler, drop_last=True,
                              num_workers=config.workers, pin_memory=context.device.type == "cuda")
    if len(train_loader) == 0:
        raise EdgekitError(f"{len(data.train)} training images make no full batch of {config.recipe.batch_size}; "
                           "lower --batch-size")
    # Validation: every rank takes an interleaved slice, no padding, so the summed counts are exact.
    val_indices = list(range(context.rank, len(data.val), context.world_size))
    from torch.utils.data import Subset

    val_loader = DataLoader(Subset(data.val, val_indices), batch_size=256, num_workers=config.workers)
    return sampler, train_loader, val_loader


@dataclass
class Session:
    """What the epochs of one run work on (built identically on every rank)."""

    data: object  # TrainingData
    model: object  # the bare module: evaluated and checkpointed
    trained: object  # the module that takes optimiser steps (DDP-wrapped in a process group)
    sampler: object
    train_loader: object
    val_loader: object
    optimizer: object
    scheduler: object
    scaler: object


def new_session(config: TrainConfig, context: DistContext, data, model) -> Session:
    import torch

    sampler, train_loader, val_loader = make_loaders(config, context, data)
    if train_loader.batch_size < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise EdgekitError(f"a batch of {train_loader.batch_size} image per process cannot train BatchNorm layers; "
                           f"use --batch-size >= {2 * context.world_size}")
    optimizer = make_optimizer(config.recipe, [p for p in model.parameters() if p.requires_grad])
    scheduler = make_scheduler(config.recipe, optimizer, steps_per_epoch=len(train_loader), epochs=config.recipe.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp == "fp16" and context.device.type == "cuda")
    return Session(data, model, model, sampler, train_loader, val_loader, optimizer, scheduler, scaler)


def run_epoch(config: TrainConfig, context: DistContext, session: Session, epoch: int) -> dict:
    """One epoch of training then validation; the record that goes to the log."""
    started = time.monotonic()
    session.sampler.set_epoch(epoch)
    session.data.train.set_epoch(epoch)
    record = {"epoch": epoch + 1, "lr": session.optimizer.param_groups[0]["lr"]}
    record.update(train_one_epoch(config, context, session.trained, session.train_loader, session.optimizer,
                                  session.scheduler, session.scaler, epoch))
    _sync_buffers(context, session.model)
    record.update(evaluate_loader(config, context, session.model, session.val_loader))
    record["seconds"] = time.monotonic() - started
    if config.recipe.schedule == "plateau":
        session.scheduler.step(record["train_loss"])  # the papers' choice: plateau of the training loss
    return record


def _sync_buffers(context: DistContext, model) -> None:
    """Give every rank rank 0's BatchNorm statistics before validating.

    DDP broadcasts buffers before each training forward, but that forward then updates each rank's
    running statistics with its own batch; without this, ranks > 0 would validate a slightly
    different network from the one rank 0 checkpoints.
    """
    if not context.distributed:
        return
    import torch.distributed as dist

    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def _load_data(config: TrainConfig, context: DistContext):
    data = load_training_data(config.data, config.preprocessing, val_fraction=config.val_fraction, seed=config.seed,
                              val_dir=config.val_data, subset=config.subset, augment=config.augment,
                              download=config.download and context.is_main, verbose=config.verbose and context.is_main)
    if len(data.classes) != config.model.num_classes:
        raise EdgekitError(f"{config.data} has {len(data.classes)} classes, the model has {config.model.num_classes} "
                           "outputs (pass --num-classes)")
    return data


def _train(config: TrainConfig, context: DistContext) -> TrainResult:
    _set_threads(config, context)
    _check_amp(config, context)
    inputs = {"training data": None if config.data == CIFAR10 else config.data, "validation data": config.val_data}
    _check_output(config, context, inputs)
    data = _load_data(config, context)
    session = new_session(config, context, data, _build(config, context))
    run = config.run_identity()
    state = Progress()
    last_path = config.out / "last.pt"
    if config.resume:
        payload = _resume_payload(context, last_path, config, run)
        state = restore_training(payload, path=last_path, model=session.model, optimizer=session.optimizer,
                                 scheduler=session.scheduler, scaler=session.scaler)
        if context.is_main and config.verbose:
            say(f"resuming {last_path} at epoch {state.next_epoch + 1}/{config.recipe.epochs}")
    with _claim_output(config, context, inputs):
        return _run_epochs(config, context, data, session, state, run)


def _run_epochs(config: TrainConfig, context: DistContext, data, session: Session, state: Progress,
                run: dict) -> TrainResult:
    last_path, best_path = config.out / "last.pt", config.out / "best.pt"
    if context.is_main:
        _write_config(config, context, data, len(session.train_loader))
    if context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        session.trained = DistributedDataParallel(
            session.model, device_ids=[context.device] if context.device.type == "cuda" else None)
    for epoch in range(state.next_epoch, config.recipe.epochs):
        record = run_epoch(config, context, session, epoch)
        state.history.append(record)
        state.next_epoch = epoch + 1
        improved = record["val_accuracy"] > state.best_val_accuracy
        state.best_val_accuracy = max(state.best_val_accuracy, record["val_accuracy"])
        if context.is_main:
            _save_epoch(config, session, state, record, improved, run)
        barrier(context)
    return TrainResult(config.out, best_path, last_path, state.history, state.best_val_accuracy)


def _save_epoch(config: TrainConfig, session: Session, state: Progress, record: dict, improved: bool, run: dict) -> None:
    """Rank 0: best.pt when validation improved, last.pt always, then the log (each file atomically)."""
    preprocessing = config.preprocessing.to_dict()
    if improved:
        save_checkpoint(config.out / "best.pt", config.model, cpu_state_dict(session.model), preprocessing=preprocessing,
                        metrics=record, classes=session.data.classes, run=run)
    save_training_checkpoint(config.out / "last.pt", config=config.model, model=session.model,
                             preprocessing=preprocessing, optimizer=session.optimizer, scheduler=session.scheduler,
                             scaler=session.scaler, progress=state, run=run, classes=session.data.classes)
    write_log(config.out, state.history)
    if config.verbose:
        _report_epoch(record, config.recipe.epochs, improved)


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


def train_one_epoch(config, context, model, loader, optimizer, scheduler, scaler, epoch: int) -> dict:
    import torch

    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    memory_format = torch.channels_last if _channels_last(config, context) else torch.contiguous_format
    loss_sum, correct, seen, compute_seconds = 0.0, 0.0, 0.0, 0.0
    with progress(f"epoch {epoch + 1}/{config.recipe.epochs}", len(loader),
                  enabled=config.verbose and context.is_main) as advance:
        for images, labels in loader:
            step_started = time.monotonic()
            images = images.to(context.device, non_blocking=True, memory_format=memory_format)
            labels = labels.to(context.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(config, context):
                logits = model(images)
                loss = loss_fn(logits, labels)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if config.recipe.steps_per_batch:
                scheduler.step()
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
            compute_seconds += time.monotonic() - step_started
            advance()
    loss_sum, correct, seen = all_reduce_sums(context, [loss_sum, correct, seen])
    # Throughput of the whole job: images of all ranks over the slowest rank's step time.
    slowest = all_reduce_max(context, compute_seconds)
    return {"train_loss": loss_sum / seen, "train_accuracy": correct / seen, "train_images": int(seen),
            "images_per_second": seen / slowest if slowest > 0 else 0.0}


def evaluate_loader(config, context, model, loader) -> dict:
    import torch

    model.eval()
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    memory_format = torch.channels_last if _channels_last(config, context) else torch.contiguous_format
    loss_sum, correct, seen = 0.0, 0.0, 0.0
    with torch.no_grad(), _autocast(config, context):
        for images, labels in loader:
            images = images.to(context.device, memory_format=memory_format)
            labels = labels.to(context.device)
            logits = model(images)
            loss_sum += loss_fn(logits.float(), labels).item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
    loss_sum, correct, seen = all_reduce_sums(context, [loss_sum, correct, seen])
    return {"val_loss": loss_sum / max(seen, 1), "val_accuracy": correct / max(seen, 1)}


def _report_epoch(record: dict, epochs: int, improved: bool) -> None:
    say(f"epoch {record['epoch']}/{epochs}: loss {record['train_loss']:.3f}, "
        f"train {100 * record['train_accuracy']:.1f}%, val {100 * record['val_accuracy']:.2f}%"
        f"{' (best)' if improved else ''}, lr {record['lr']:.2e}, {record['images_per_second']:.0f} img/s, "
        f"{record['seconds']:.0f} s")


def _write_config(config: TrainConfig, context: DistContext, data, steps_per_epoch: int) -> None:
    import torch

    record = {
        "schema": RUN_SCHEMA, "model": config.model.to_dict(), "recipe": config.recipe.to_dict(),
        "data": data.fingerprint,
        "seed": config.seed, "augment": config.augment, "amp": config.amp,
        "channels_last": _channels_last(config, context), "sync_batchnorm": config.sync_batchnorm,
        "world_size": context.world_size, "backend": context.backend, "device": str(context.device),
        "per_process_batch": config.recipe.batch_size // context.world_size, "steps_per_epoch": steps_per_epoch,
        "threads_per_process": torch.get_num_threads(), "torch": torch.__version__,
    }
    replace_text(config.out / "config.json", json.dumps(record, indent=2) + "\n")

