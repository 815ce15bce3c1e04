"""The pruning stage: an edgekit checkpoint in, a pruned (and fine-tuned) checkpoint folder out.

Two methods:
- ``l1-unstructured``: the compression paper's global L1 pruning of all conv weights, ``amount``
  (20%) of the remaining weights per round, fine-tuning after every round, until ``sparsity`` is
  reached. The network keeps its shape: zeros shrink a compressed file, not dense latency.
- ``channels``: structured channel pruning with torch-pruning; ``sparsity`` is the fraction of
  channels removed per coupled group. The network really gets smaller and faster.

Fine-tuning and validation reuse the training split the checkpoint was trained on (recorded by
``edgekit train``), so validation images are never trained on.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgekit.artifact.folder import write_folder_manifest
from edgekit.core.checks import require_int, require_number
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import atomic_folder, owned_by, plan_output_folder
from edgekit.core.progress import say, warn
from edgekit.data.preprocessing import Preprocessing
from edgekit.models import (
    Checkpoint,
    module_from_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from edgekit.models.pruned_shapes import pruned_shapes
from edgekit.prune.structured import prune_channels
from edgekit.prune.unstructured import (
    make_permanent,
    prune_round,
    rounds_for_sparsity,
    sparsity,
)
from edgekit.train.data import CIFAR10, load_training_data
from edgekit.train.epochs import LoopSettings, evaluate, fit
from edgekit.train.recipes import Recipe

METHODS = ("l1-unstructured", "channels")
PRUNE_SCHEMA = "edgekit.prune/1"  # the output folder's manifest: what --force may replace


@dataclass(frozen=True)
class PruneSettings:
    method: str
    sparsity: float
    amount: float = 0.2  # l1-unstructured: share of the remaining weights pruned per round
    finetune_epochs: int = 1  # per round (unstructured) or after pruning (channels)
    finetune_subset: int | None = None  # fine-tune on a deterministic sample of the training split
    lr: float = 0.01
    batch_size: int = 128
    val_fraction: float | None = None  # default: the training run's
    seed: int | None = None  # default: the training run's
    force: bool = False
    verbose: bool = True

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EdgekitError(f"unknown pruning method {self.method!r}; expected one of {', '.join(METHODS)}")
        require_number("--sparsity", self.sparsity, 0, 1, low_open=True, high_open=True)
        require_number("--amount", self.amount, 0, 1, low_open=True, high_open=True)
        require_int("--finetune-epochs", self.finetune_epochs, 1)
        require_int("--batch-size", self.batch_size, 2)  # BatchNorm cannot train on a batch of one
        require_int("--finetune-subset", self.finetune_subset, 1, optional=True)
        require_number("--lr", self.lr, 0, 10, low_open=True)
        require_number("val_fraction", self.val_fraction, 0, 1, low_open=True, high_open=True, optional=True)
        require_int("seed", self.seed, 0, optional=True)


@dataclass
class PruneResult:
    out: Path
    checkpoint: Path
    rounds: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


def _split_of(checkpoint: Checkpoint, settings: PruneSettings, weights: Path) -> tuple[float, int]:
    run = checkpoint.run or (checkpoint.training or {}).get("run") or {}
    data = run.get("data") or {}
    val_fraction = settings.val_fraction or data.get("val_fraction")
    seed = settings.seed if settings.seed is not None else run.get("seed")
    if val_fraction is None or seed is None:
        warn(f"{weights} does not record its training split; validating on a fresh 10% split (seed 0), "
             "which may overlap the images it was trained on")
    return val_fraction or 0.1, 0 if seed is None else seed


def _finetune(settings: PruneSettings, seed: int):
    # Short fine-tunes: SGD with a one-cycle schedule at a modest peak (not from the papers, which
    # fine-tuned at 1e-4 with early stopping over many epochs).
    recipe = Recipe("prune-finetune", optimizer="sgd", lr=settings.lr, weight_decay=5e-4, batch_size=settings.batch_size,
                    epochs=settings.finetune_epochs, schedule="onecycle", pct_start=0.2, source="edgekit fine-tune")
    return LoopSettings(recipe, seed=seed, device="cpu", verbose=settings.verbose)


def prune_checkpoint(weights: str | Path, data: str, out: str | Path, settings: PruneSettings) -> PruneResult:
    weights, out = Path(weights), Path(out)
    plan = plan_output_folder(out, force=settings.force, owner=owned_by(PRUNE_SCHEMA), inputs={
        "weights file": weights, "data": None if data == CIFAR10 else data})
    checkpoint = read_checkpoint(weights)
    if checkpoint.config is None:
        raise EdgekitError(f"{weights} is a bare state_dict; pruning needs a checkpoint from edgekit train")
    if checkpoint.preprocessing is None:
        raise EdgekitError(f"{weights} records no preprocessing; pruning needs a checkpoint from edgekit train")
    if checkpoint.pruned_shapes:
        raise EdgekitError(f"{weights} is already channel-pruned; prune its parent instead")
    model = module_from_checkpoint(checkpoint)
    preprocessing = Preprocessing.from_dict(checkpoint.preprocessing)
    val_fraction, seed = _split_of(checkpoint, settings, weights)
    dataset = load_training_data(data, preprocessing, val_fraction=val_fraction, seed=seed,
                                 subset=settings.finetune_subset, verbose=settings.verbose)
    if len(dataset.classes) != checkpoint.config.num_classes:
        raise EdgekitError(f"{data} has {len(dataset.classes)} classes, {weights} has {checkpoint.config.num_classes} outputs")
    with atomic_folder(plan) as staging:
        if settings.method == "l1-unstructured":
            rounds, extra, model = _unstructured(model, dataset, settings, seed)
        else:
            rounds, extra, model = _channels(model, dataset, preprocessing, settings, seed)
        summary = _summary(weights, checkpoint.config, model, settings, rounds, val_fraction, seed)
        save_checkpoint(staging / "pruned.pt", checkpoint.config, _state_dict(model),
                        preprocessing=checkpoint.preprocessing, pruning=summary, **extra)
        (staging / "prune_report.json").write_text(json.dumps({"summary": summary, "rounds": rounds}, indent=2) + "\n")
        write_folder_manifest(staging, {"kind": "pruned checkpoint", "parent": str(weights)}, schema=PRUNE_SCHEMA)
    return PruneResult(out, out / "pruned.pt", rounds, summary)


def _state_dict(model) -> dict:
    return {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}


def _record(stage: str, model, metrics: dict, **extra) -> dict:
    measured = sparsity(model)
    return {"stage": stage, "val_accuracy": metrics["val_accuracy"], "val_loss": metrics["val_loss"],
            "conv_sparsity": measured["conv_sparsity"], "parameter_sparsity": measured["parameter_sparsity"],
            "params": sum(p.numel() for p in model.parameters()), **extra}


def _unstructured(model, dataset, settings: PruneSettings, seed: int):
    rounds = [_record("parent", model, evaluate(model, dataset.val))]
    total = rounds_for_sparsity(settings.sparsity, amount=settings.amount)
    for index in range(1, total + 1):
        started = time.monotonic()
        prune_round(model, amount=settings.amount)
        pruned = evaluate(model, dataset.val)
        history = fit(model, dataset, _finetune(settings, seed + index))
        rounds.append(_record(f"round {index}", model, history[-1], accuracy_before_finetune=pruned["val_accuracy"],
                              seconds=round(time.monotonic() - started, 1)))
        if settings.verbose:
            last = rounds[-1]
            say(f"round {index}/{total}: conv sparsity {100 * last['conv_sparsity']:.1f}%, val "
                f"{100 * pruned['val_accuracy']:.2f}% after pruning -> {100 * last['val_accuracy']:.2f}% after fine-tuning")
    make_permanent(model)
    return rounds, {}, model


def _channels(model, dataset, preprocessing: Preprocessing, settings: PruneSettings, seed: int):
    parent = _record("parent", model, evaluate(model, dataset.val))
    started = time.monotonic()
    model.eval()
    # Real images: prune_channels checks the pruned network against the original on this batch.
    example = dataset.val.images[:8].float()
    result = prune_channels(model, example, ratio=settings.sparsity)
    for line in result.skipped:
        warn(f"not pruned: {line}")
    model = result.model
    pruned = evaluate(model, dataset.val)
    history = fit(model, dataset, _finetune(settings, seed))
    after = _record("channels pruned + fine-tuned", model, history[-1], accuracy_before_finetune=pruned["val_accuracy"],
                    macs=result.macs_after, params_before=result.params_before, macs_before=result.macs_before,
                    skipped=list(result.skipped), seconds=round(time.monotonic() - started, 1))
    parent["macs"] = result.macs_before
    if settings.verbose:
        say(f"channels: params {result.params_before:,} -> {result.params_after:,}, MACs {result.macs_before:,} -> "
            f"{result.macs_after:,}; val {100 * parent['val_accuracy']:.2f}% -> {100 * pruned['val_accuracy']:.2f}% "
            f"pruned -> {100 * after['val_accuracy']:.2f}% fine-tuned")
    return [parent, after], {"pruned_shapes": pruned_shapes(model)}, model


def _summary(weights: Path, config, model, settings: PruneSettings, rounds: list[dict], val_fraction, seed) -> dict:
    parent, final = rounds[0], rounds[-1]
    return {"parent": str(weights), "settings": asdict(settings), "val_fraction": val_fraction, "seed": seed,
            "parent_val_accuracy": parent["val_accuracy"], "val_accuracy": final["val_accuracy"],
            "conv_sparsity": final["conv_sparsity"], "params_before": parent["params"], "params_after": final["params"],
            "rounds": len(rounds) - 1, "model": config.to_dict()}

