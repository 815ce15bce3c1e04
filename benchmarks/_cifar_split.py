"""A training run's own CIFAR-10 split as folders of symlinks (the dataset is never copied)."""

from __future__ import annotations

import random
from pathlib import Path

from edgekit.data import find_images
from edgekit.data.folders import split_per_class
from edgekit.models.checkpoint import read_checkpoint


def link_folder(images, indices, folder: Path) -> Path:
    for i in indices:
        source = images.files[i]
        link = folder / source.relative_to(images.root)
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(source.resolve())
    return folder


def training_run(folder: Path) -> dict:
    """The run identity (data split, seed) recorded by edgekit train (best.pt, or last.pt's training state)."""
    return read_checkpoint(folder / "best.pt").run or read_checkpoint(folder / "last.pt").training["run"]


def split_folders(data: str, run: dict, work: Path, *, calib: int = 300, evaluation: int = 1000,
                  plan_val: int = 0) -> dict[str, Path]:
    """The training run's own split: calibration from its training part; evaluation (and, if asked,
    the int8 planner's --val, disjoint from it) from its held-out part, which training never saw."""
    images = find_images(data)
    train, val = split_per_class(images, val_fraction=run["data"]["val_fraction"], seed=run["seed"])
    chosen_calib = train.subset(calib, seed=1)
    chosen_eval = val.subset(evaluation, seed=2)
    index = {path: i for i, path in enumerate(images.files)}
    folders = {"calib": link_folder(images, [index[p] for p in chosen_calib.files], work / "calib"),
               "eval": link_folder(images, [index[p] for p in chosen_eval.files], work / "eval")}
    if plan_val:
        taken = set(chosen_eval.files)
        rest = [index[p] for p in val.files if p not in taken]
        picked = sorted(random.Random(3).sample(rest, min(plan_val, len(rest))))
        folders["plan_val"] = link_folder(images, picked, work / "plan_val")
    return folders


