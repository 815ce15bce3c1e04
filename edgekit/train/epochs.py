"""The training engine: epochs of a module on :class:`TrainingData`, and the one evaluation.

``edgekit train`` (with checkpoints, resuming and a process group), fine-tuning inside the pruning
stage and in-memory training (the demo, the search's candidates, the tests) all run these epochs;
they differ only in what they do around them. ``fit`` is the entry for the last two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from edgekit.core.checks import require_int, require_number
from edgekit.core.errors import EdgekitError
from edgekit.core.progress import progress
from edgekit.train.auxiliary import check_training_forward, training_loss
from edgekit.train.data import TrainingData
from edgekit.train.distributed import (
    DistContext,
    all_reduce_max,
    all_reduce_sums,
    single_process,
)
from edgekit.train.recipes import Recipe, make_optimizer, make_scheduler

AMP_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}
EVAL_BATCH = 256


@dataclass(frozen=True)
class LoopSettings:
    """How the epochs run; nothing about where a run is written (see ``TrainConfig`` for that)."""

    recipe: Recipe
    seed: int = 0
    device: str = "cpu"  # the Python API's default; ``edgekit train`` passes its --device (auto)
    amp: str = "off"  # off | bf16 | fp16
    channels_last: bool | None = None  # None: on CUDA only, where cuDNN's NHWC kernels are faster
    sync_batchnorm: bool = False
    threads: int | None = None
    workers: int = 0
    # Wall-clock budget: training stops at the first epoch boundary past it (the schedule is cut short).
    max_seconds: float | None = None
    verbose: bool = True

    def __post_init__(self) -> None:
        recipe = self.recipe
        require_int("--epochs", recipe.epochs, 1, 100_000)
        require_int("--batch-size", recipe.batch_size, 1, 1 << 20)
        require_number("--lr", recipe.lr, 0, 10, low_open=True)
        require_number("--weight-decay", recipe.weight_decay, 0, 1)
        require_int("--seed", self.seed, 0, 2**32 - 1)
        require_int("--threads", self.threads, 1, 1024, optional=True)
        require_int("--workers", self.workers, 0, 256)
        require_number("max_seconds", self.max_seconds, 0, 1e9, low_open=True, optional=True)


def fit(model, data: TrainingData, settings: LoopSettings) -> list[dict]:
    """Train ``model`` in place on ``data.train`` in this process, without checkpoints; one record per
    epoch (train loss and accuracy, then ``val_loss``/``val_accuracy`` on ``data.val``). The model is
    left in eval mode on ``settings.device``."""
    import torch

    context = single_process(settings.device)
    set_threads(settings, context)
    check_amp(settings, context)
    model = model.to(context.device)
    if uses_channels_last(settings, context):
        model = model.to(memory_format=torch.channels_last)
    torch.manual_seed(settings.seed)
    session = new_session(settings, context, data, model)
    return run_epochs(settings, context, session)


def set_threads(settings: LoopSettings, context: DistContext) -> None:
    import os

    import torch

    if settings.threads:
        torch.set_num_threads(settings.threads)
    elif context.device.type == "cpu" and context.local_world_size > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // context.local_world_size))


def uses_channels_last(settings: LoopSettings, context: DistContext) -> bool:
    return context.device.type == "cuda" if settings.channels_last is None else settings.channels_last


def check_amp(settings: LoopSettings, context: DistContext) -> None:
    if settings.amp != "off" and settings.amp not in AMP_DTYPES:
        raise EdgekitError(f"unknown --amp {settings.amp!r}; expected off, bf16 or fp16")
    if settings.amp == "fp16" and context.device.type != "cuda":
        raise EdgekitError("--amp fp16 needs a CUDA device; use --amp bf16 on CPU")


def _autocast(amp: str, device_type: str):
    import torch

    if amp == "off":
        return torch.autocast(device_type, enabled=False)
    return torch.autocast(device_type, dtype=getattr(torch, AMP_DTYPES[amp]))


def make_train_loader(settings: LoopSettings, context: DistContext, data: TrainingData):
    from torch.utils.data import DataLoader, DistributedSampler

    recipe = settings.recipe
    if recipe.batch_size % context.world_size:
        raise EdgekitError(f"batch size {recipe.batch_size} is the global batch and must divide evenly "
                           f"over {context.world_size} processes")
    per_rank = recipe.batch_size // context.world_size
    sampler = DistributedSampler(data.train, num_replicas=context.world_size, rank=context.rank,
                                 shuffle=True, seed=settings.seed)
    # BatchNorm cannot train on a final batch of one image: drop it (or every partial batch).
    drop_last = not recipe.partial_batches or (per_rank > 1 and len(sampler) % per_rank == 1)
    loader = DataLoader(data.train, batch_size=per_rank, sampler=sampler, drop_last=drop_last,
                        num_workers=settings.workers, pin_memory=context.device.type == "cuda")
    if len(loader) == 0:
        raise EdgekitError(f"{len(data.train)} training images make no full batch of {recipe.batch_size}; "
                           "lower --batch-size")
    return sampler, loader


@dataclass
class Session:
    """What the epochs of one run work on (built identically on every rank)."""

    data: TrainingData
    model: object  # the bare module: evaluated and checkpointed
    trained: object  # the module that takes optimiser steps (DDP-wrapped in a process group)
    sampler: object
    train_loader: object
    optimizer: object
    scheduler: object
    scaler: object


def new_session(settings: LoopSettings, context: DistContext, data: TrainingData, model) -> Session:
    import torch

    sampler, train_loader = make_train_loader(settings, context, data)
    if train_loader.batch_size < 2 and any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise EdgekitError(f"a batch of {train_loader.batch_size} image per process cannot train BatchNorm layers; "
                           f"use --batch-size >= {2 * context.world_size}")
    check_training_forward(model, data.train.images[:2], context.device)
    recipe = settings.recipe
    optimizer = make_optimizer(recipe, [p for p in model.parameters() if p.requires_grad])
    scheduler = make_scheduler(recipe, optimizer, steps_per_epoch=len(train_loader), epochs=recipe.epochs)
    scaler = torch.amp.GradScaler("cuda", enabled=settings.amp == "fp16" and context.device.type == "cuda")
    return Session(data, model, model, sampler, train_loader, optimizer, scheduler, scaler)


def run_epochs(settings: LoopSettings, context: DistContext, session: Session, *, first_epoch: int = 0,
               after_epoch=None) -> list[dict]:
    """Epochs ``first_epoch`` .. ``recipe.epochs - 1``, or fewer when the wall-clock budget runs out;
    ``after_epoch(record)`` runs after each one (checkpoints, the log)."""
    started = time.monotonic()
    history = []
    for epoch in range(first_epoch, settings.recipe.epochs):
        record = run_epoch(settings, context, session, epoch)
        history.append(record)
        if after_epoch is not None:
            after_epoch(record)
        # The slowest rank's clock: every rank stops after the same epoch.
        if settings.max_seconds is not None and all_reduce_max(context, time.monotonic() - started) > settings.max_seconds:
            break
    return history


def run_epoch(settings: LoopSettings, context: DistContext, session: Session, epoch: int) -> dict:
    """One epoch of training then validation; the record that goes to the log."""
    started = time.monotonic()
    session.sampler.set_epoch(epoch)
    session.data.train.set_epoch(epoch)
    record = {"epoch": epoch + 1, "lr": session.optimizer.param_groups[0]["lr"]}
    record.update(train_one_epoch(settings, context, session, epoch))
    _sync_buffers(context, session.model)
    record.update(evaluate(session.model, session.data.val, context=context, amp=settings.amp,
                           channels_last=uses_channels_last(settings, context), workers=settings.workers))
    record["seconds"] = time.monotonic() - started
    if settings.recipe.schedule == "plateau":
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


def train_one_epoch(settings: LoopSettings, context: DistContext, session: Session, epoch: int) -> dict:
    import torch

    model, optimizer, scheduler, scaler = session.trained, session.optimizer, session.scheduler, session.scaler
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    memory_format = torch.channels_last if uses_channels_last(settings, context) else torch.contiguous_format
    loss_sum, correct, seen, compute_seconds = 0.0, 0.0, 0.0, 0.0
    with progress(f"epoch {epoch + 1}/{settings.recipe.epochs}", len(session.train_loader),
                  enabled=settings.verbose and context.is_main) as advance:
        for images, labels in session.train_loader:
            step_started = time.monotonic()
            images = images.to(context.device, non_blocking=True, memory_format=memory_format)
            labels = labels.to(context.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(settings.amp, context.device.type):
                logits, loss = training_loss(model(images), labels, loss_fn)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            if settings.recipe.steps_per_batch:
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


def evaluate(model, images, *, context: DistContext | None = None, amp: str = "off", channels_last: bool = False,
             workers: int = 0) -> dict:
    """``val_loss`` (mean cross-entropy) and ``val_accuracy`` of ``model`` on a dataset of (image, label)
    pairs, e.g. ``TrainingData.val``. Every validation in edgekit's training goes through here.

    In a process group every rank takes an interleaved slice, no padding, so the summed counts are exact.
    """
    import torch
    from torch.utils.data import DataLoader, Subset

    if context is None:  # one process, on the device the model is on
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        context = DistContext(0, 1, 0, 1, device, None)
    loader = DataLoader(Subset(images, range(context.rank, len(images), context.world_size)), batch_size=EVAL_BATCH,
                        num_workers=workers)
    model.eval()
    loss_fn = torch.nn.CrossEntropyLoss(reduction="sum")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    loss_sum, correct, seen = 0.0, 0.0, 0.0
    with torch.no_grad(), _autocast(amp, context.device.type):
        for batch, labels in loader:
            batch = batch.to(context.device, memory_format=memory_format)
            labels = labels.to(context.device)
            logits = model(batch)
            loss_sum += loss_fn(logits.float(), labels).item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
    loss_sum, correct, seen = all_reduce_sums(context, [loss_sum, correct, seen])
    return {"val_loss": loss_sum / max(seen, 1), "val_accuracy": correct / max(seen, 1)}
