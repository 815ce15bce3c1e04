"""Training one search candidate with one seed, in a worker process (or a Ray task).

A candidate is a model config plus the checkpoint of its parent: the child is built, initialised
from the parent's trained weights (``transfer_weights``), trained for the budget, evaluated on the
validation split and saved. Workers are separate processes (spawned), so candidates train
concurrently without sharing an interpreter lock or a thread pool.

The result carries which validation images the model got right (one character per image): the
search's intervals compare candidates image by image (:mod:`edgekit.search.significance`).
"""

from __future__ import annotations

import dataclasses
import os
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
from edgekit.train.epochs import EVAL_BATCH, LoopSettings, fit
from edgekit.train.recipes import IN_MEMORY_RECIPE, get_recipe


def train_candidate(job: dict) -> dict:
    """job: config (dict), parent (checkpoint path or None), data (npz path), epochs, minutes, lr,
    batch_size, seed, threads, device, out (checkpoint path), preprocessing (dict), and for the tests
    only fault_marker. Returns the result row."""
    import torch

    _die_once_for_tests(job.get("fault_marker"))
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
    # fit validates after every epoch; the search scores the trained model once, image by image
    # (below), so fit gets one batch of it: the full set twice would double the cost of a candidate.
    history = fit(model, dataclasses.replace(data, val=_head(data.val)), LoopSettings(recipe, seed=int(job["seed"]), device=job.get("device", "cpu"),
                                            max_seconds=minutes * 60 if minutes else None,
                                            verbose=bool(job.get("verbose", False))))
    seconds = time.monotonic() - started
    right = _correct_images(model, data.val)
    model.cpu()
    # Class names too: a build records them and the bench maps evaluation folders to outputs by name.
    save_checkpoint(Path(job["out"]), config, model.state_dict(), preprocessing=job["preprocessing"],
                    classes=list(data.classes))
    return {"val_accuracy": right.count("1") / len(right), "correct": right,
            "train_loss": history[-1]["train_loss"], "epochs": len(history), "train_seconds": seconds,
            "transfer": transfer}


def _head(images):
    from torch.utils.data import Subset

    return Subset(images, range(min(EVAL_BATCH, len(images))))


def _correct_images(model, images) -> str:
    """'1' for each validation image the trained model classifies right, '0' otherwise, in order."""
    import torch
    from torch.utils.data import DataLoader

    device = next(model.parameters()).device
    marks = []
    model.eval()
    with torch.no_grad():
        for batch, labels in DataLoader(images, batch_size=EVAL_BATCH):
            hits = model(batch.to(device)).argmax(1).cpu() == labels
            marks.extend("1" if hit else "0" for hit in hits.tolist())
    return "".join(marks)


def _die_once_for_tests(marker: str | None) -> None:
    """Fault injection for the retry tests: the first worker to get here exits without a word.

    The marker file makes it happen once per search, whichever worker and node runs first; a real
    search never sets it (the driver passes it only when EDGEKIT_SEARCH_TEST_FAULT names a file).
    """
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.close(fd)
    os._exit(17)  # a crashed worker: no exception, no result, the process is gone
