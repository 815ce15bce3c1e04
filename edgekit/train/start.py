"""What ``edgekit train``'s arguments become: a model config, its preprocessing, and, for several
processes, a torchrun launch checked before any rank starts."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.data import Preprocessing
from edgekit.data.folders import find_images
from edgekit.models import ModelConfig, default_config, get_spec
from edgekit.train.data import CIFAR10
from edgekit.train.distributed import Launch, launch_with_torchrun
from edgekit.train.loop import output_problem
from edgekit.train.recipes import Recipe


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def is_rank_zero() -> bool:
    return os.environ.get("RANK", "0") == "0"


def parse_model_options(pairs: tuple[str, ...]) -> dict:
    """``--option KEY=JSON`` pairs as the model builder's keyword arguments."""
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


def count_classes(data: str) -> int:
    if data == CIFAR10:
        return 10
    images = find_images(data, purpose="training data")
    if images.labels is None:
        raise EdgekitError(f"training data {data} must be an ImageFolder tree: one sub-folder per class")
    return len(images.classes)


def model_and_preprocessing(model: str, data: str, *, num_classes: int | None, in_channels: int | None,
                            input_size: int | None, options: tuple[str, ...]) -> tuple[ModelConfig, Preprocessing]:
    get_spec(model)  # an unknown model is reported before the data folder is scanned
    config = default_config(model, num_classes=num_classes or count_classes(data), in_channels=in_channels,
                            input_size=input_size, options=parse_model_options(options))
    preprocessing = get_spec(model).preprocessing(input_size=config.input_size, in_channels=config.in_channels)
    return config, preprocessing


def launch_ranks(launch: Launch, recipe: Recipe, rank_args: list[str], *, out: Path, data: str,
                 val_data: str | None, resume: bool, force: bool) -> None:
    """Start ``launch.nproc_per_node`` ranks on this node under torchrun, each with ``rank_args``."""
    # Fail here with one line rather than in every rank under torchrun's failure report.
    world_size = launch.nproc_per_node * launch.nnodes
    if recipe.batch_size % world_size:
        raise EdgekitError(f"batch size {recipe.batch_size} is the global batch and must divide evenly over "
                           f"{world_size} processes")
    problem = output_problem(out, resume=resume, force=force,
                             inputs={"training data": None if data == CIFAR10 else data, "validation data": val_data})
    if problem:
        raise EdgekitError(problem)
    status = launch_with_torchrun(launch, rank_args)
    if status:
        raise EdgekitError(f"torchrun exited with status {status} (the ranks' errors are above)")
