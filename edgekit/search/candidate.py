"""Training one search candidate, in its own process.

A candidate is a model config plus the checkpoint of its parent: the child is built, initialised
from the parent's trained weights (``transfer_weights``), trained for the budget, evaluated on the
validation split and saved. Workers are separate processes (spawned), so candidates train
concurrently without sharing an interpreter lock or a thread pool.
"""

from __future__ import annotations

import time
from pathlib import Path

from edgekit.models import (
    ModelConfig,
    build_model,
    module_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from edgekit.search.weight_transfer import transfer_weights
from edgekit.train.data import load_arrays
from edgekit.train.epochs import LoopSettings, fit
from edgekit.train.recipes import IN_MEMORY_RECIPE, get_recipe


def train_candidate(job: dict) -> dict:
    """job: config (dict), parent (checkpoint path or None), data (npz path), epochs, minutes, lr,
    batch_size, seed, threads, out (checkpoint path), preprocessing (dict). Returns the result row."""
    import torch

    torch.set_num_threads(int(job["threads"]))
    config = ModelConfig.from_dict(job["config"])
    torch.manual_seed(int(job["seed"]))
    model = build_model(config)
    transfer = None
    if job["parent"] is not None:
        parent = module_from_checkpoint(read_checkpoint(job["parent"]))
        transfer = transfer_weights(parent, model)
    data = load_arrays(job["data"])
    started = time.monotonic()
    minutes = job.get("minutes")
    recipe = get_recipe(IN_MEMORY_RECIPE).with_overrides(epochs=int(job["epochs"]), batch_size=int(job["batch_size"]),
                                                         lr=float(job["lr"]))
    history = fit(model, data, LoopSettings(recipe, seed=int(job["seed"]), max_seconds=minutes * 60 if minutes else None,
                                            verbose=bool(job.get("verbose", False))))
    seconds = time.monotonic() - started
    val_accuracy = history[-1]["val_accuracy"]  # the trained model's, measured after its last epoch
    # Class names too: a build records them and the bench maps evaluation folders to outputs by name.
    save_checkpoint(Path(job["out"]), config, model.state_dict(), preprocessing=job["preprocessing"],
                    classes=list(data.classes))
    return {"checkpoint": job["out"], "val_accuracy": val_accuracy, "train_loss": history[-1]["train_loss"],
            "epochs": len(history), "train_seconds": seconds, "transfer": transfer}
