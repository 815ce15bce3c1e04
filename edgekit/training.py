"""A plain supervised training loop on in-memory arrays (the demo and the tests use it).

It is deliberately small: Adam, cosine decay, a deterministic seed, progress per epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.progress import progress, say


@dataclass(frozen=True)
class FitConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int | None = None
    # Wall-clock budget: training stops at the first epoch boundary past it (the schedule is cut short).
    max_seconds: float | None = None
    verbose: bool = True  # progress bar and summary line (off in parallel search workers)


def accuracy(model, images: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(torch.from_numpy(images[start:start + batch_size]))
            correct += int((logits.argmax(1).numpy() == labels[start:start + batch_size]).sum())
    return correct / len(images)


def fit(model, images: np.ndarray, labels: np.ndarray, config: FitConfig = FitConfig(),
        val: tuple[np.ndarray, np.ndarray] | None = None) -> list[dict]:
    """Train ``model`` in place; returns one record per epoch (loss, train and val accuracy)."""
    import time

    import torch
    from torch import nn

    started = time.monotonic()
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    x = torch.from_numpy(images)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = (len(x) + config.batch_size - 1) // config.batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                   total_steps=config.epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(config.seed)
    history = []
    with progress("training", config.epochs, enabled=config.verbose) as advance:
        for epoch in range(config.epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for start in range(0, len(x), config.batch_size):
                batch = order[start:start + config.batch_size]
                if len(batch) < 2:
                    continue  # BatchNorm cannot normalise a batch of one in training mode
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x[batch]), y[batch])
                loss.backward()
                optimizer.step()
                schedule.step()
                total += loss.item() * len(batch)
            record = {"epoch": epoch + 1, "loss": total / len(x)}
            if val is not None:
                record["val_accuracy"] = accuracy(model, *val)
            history.append(record)
            advance()
            if config.max_seconds is not None and time.monotonic() - started > config.max_seconds:
                break
    model.eval()
    last = history[-1]
    if config.verbose:
        say(f"trained {len(history)} epochs: loss {last['loss']:.3f}"
            + (f", validation accuracy {100 * last['val_accuracy']:.1f}%" if "val_accuracy" in last else ""))
    return history
