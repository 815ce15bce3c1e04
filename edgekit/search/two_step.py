"""Two-step search: greedy layer replication, then the split position (Soongswang et al.).

Step 1 replicates one eligible inverted-residual block at a time: every candidate starts from its
parent's trained weights and trains for the same budget, next to a *control* (the parent trained
for that budget unchanged), so a replication is kept only if it beats more training of the parent.
The best child becomes the next parent while that holds. Step 2 sweeps the split position of the
input stem with the replications fixed. A step adopts its best child only when the gain over the
control is significant (the 95% paired interval lies above zero, :mod:`edgekit.search.significance`);
otherwise it keeps the parent's layout. Candidates of a round, each with ``repeats`` seeds, train
concurrently in processes on this machine or as Ray tasks (:mod:`edgekit.search.rounds`); their
int8 latency on the target is then measured one at a time by the build stage (never while anything
else runs), so accuracy can be traded against measured latency.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from edgekit.artifact.folder import read_manifest, write_folder_manifest
from edgekit.builder.pipeline import BuildOptions, build_artifact
from edgekit.core.checks import require_int, require_number
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import atomic_folder, owned_by, plan_output_folder
from edgekit.core.progress import progress, say
from edgekit.data import Preprocessing
from edgekit.models import ModelConfig, default_config
from edgekit.models.stats import model_stats
from edgekit.search.executors import LocalExecutor, threads_per_candidate
from edgekit.search.report import mark_pareto, write_results
from edgekit.search.rounds import RoundRunner
from edgekit.search.significance import gain_interval
from edgekit.search.space import (
    describe,
    eligible_blocks,
    split_positions,
    with_replication,
    with_split,
)
from edgekit.search.store import TrainingStore
from edgekit.targets.profiles import load_target
from edgekit.train.data import in_memory_data, save_arrays, split_folder, standardise


@dataclass(frozen=True)
class SearchSettings:
    model: str = "mobilenet_v2_rs_cifar"
    input_size: int = 32
    grayscale: bool = False
    derived: tuple[str, ...] = ()  # extra input channels computed from the image, e.g. ("edges",)
    val_fraction: float = 0.2
    root_epochs: int = 30
    epochs: int = 8  # per candidate
    minutes: float | None = None  # per-candidate wall-clock budget (stops at an epoch boundary)
    lr: float = 3e-3
    batch_size: int = 32
    workers: int = 2
    max_rounds: int = 2
    max_candidates: int | None = None  # per round: the first N eligible blocks / split positions
    max_params: int | None = None
    split_positions: tuple[int, ...] = ()  # empty: every valid position up to max_split
    max_split: int = 6
    merge: str = "concat_half"
    target: str = "cpu"
    latency_weight: float = 0.0  # score = accuracy % - latency_weight * int8 p50 ms
    calib_size: int = 100  # training images calibrating each candidate's int8 build
    seed: int = 0
    repeats: int = 1  # seeds per candidate: seed, seed + 1, ...
    executor: str = "local"  # local (processes on this machine) | ray
    ray_address: str | None = None  # None with ray: an embedded Ray on this machine
    cpus_per_candidate: int | None = None  # threads of one training (and a Ray task's num_cpus); None: cores / workers
    gpus_per_candidate: float = 0.0  # a Ray task's num_gpus; > 0 trains on CUDA

    def __post_init__(self) -> None:
        for option, value, low, optional in (
                ("--input-size", self.input_size, 8, False), ("--root-epochs", self.root_epochs, 0, False),
                ("--epochs", self.epochs, 1, False), ("batch_size", self.batch_size, 2, False),
                ("--workers", self.workers, 1, False), ("--max-rounds", self.max_rounds, 0, False),
                ("--max-candidates", self.max_candidates, 1, True), ("--max-params", self.max_params, 1, True),
                ("--max-split", self.max_split, 1, False), ("calib_size", self.calib_size, 1, False),
                ("seed", self.seed, 0, False), ("--repeats", self.repeats, 1, False),
                ("--cpus-per-candidate", self.cpus_per_candidate, 1, True)):
            require_int(option, value, low, optional=optional)
        require_number("--val-fraction", self.val_fraction, 0, 1, low_open=True, high_open=True)
        require_number("--lr", self.lr, 0, 10, low_open=True)
        require_number("--minutes", self.minutes, 0, 1e6, low_open=True, optional=True)
        require_number("--latency-weight", self.latency_weight, 0, 1e6)
        if self.merge not in ("concat_half", "concat"):
            raise EdgekitError(f"--merge must be concat_half or concat, got {self.merge!r}")
        require_number("--gpus-per-candidate", self.gpus_per_candidate, 0, 1024)
        if self.executor not in ("local", "ray"):
            raise EdgekitError(f"--executor must be local or ray, got {self.executor!r}")
        for option, given in (("--ray-address", self.ray_address), ("--gpus-per-candidate", self.gpus_per_candidate)):
            if given and self.executor != "ray":
                raise EdgekitError(f"{option} needs --executor ray")


@dataclass
class Candidate:
    id: str
    step: str
    label: str
    config: dict
    parent: str | None
    params: int = 0
    macs: int = 0
    val_accuracy: float | None = None  # mean over seeds and validation images
    val_low: float | None = None  # its 95% interval
    val_high: float | None = None
    gain: float | None = None  # accuracy minus the step's control's, with its paired 95% interval
    gain_low: float | None = None
    gain_high: float | None = None
    decision: str = ""  # adopted | no significant gain (parent kept) | kept (parent) | significant
    int8_p50_ms: float | None = None
    fp32_p50_ms: float | None = None
    score: float | None = None
    checkpoint: str | None = None
    epochs: int = 0
    train_seconds: float = 0.0
    transfer: dict | None = None
    pareto: bool = False
    key: str = ""  # the training's identity in the store (config, parent, data, budget)
    runs: list = field(default_factory=list)  # per seed: accuracy and the node that trained it
    extra: dict = field(default_factory=dict)


SEARCH_SCHEMA = "edgekit.search/1"  # the output folder's manifest: what --force may replace


class _Search:
    def __init__(self, data_dir: Path, out: Path, settings: SearchSettings, *, executor, store: TrainingStore) -> None:
        self.settings, self.out = settings, out
        self.work = out / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.candidates: list[Candidate] = []
        self.store = store
        self._prepare_data(data_dir)
        self.rounds = RoundRunner(settings, executor, store, data_path=self.data_path, data_key=self.data_key,
                                  preprocessing=self.preprocessing.to_dict())

    # -- data ---------------------------------------------------------------------------------
    def _prepare_data(self, data_dir: Path) -> None:
        s = self.settings
        train, val = split_folder(data_dir, val_fraction=s.val_fraction, seed=s.seed)
        channels = 1 if s.grayscale else 3
        total = channels + len(s.derived)
        raw = Preprocessing(input_size=(s.input_size, s.input_size), channels=channels,
                            mean=(0.0,) * total, std=(1.0,) * total, derived=s.derived)
        with progress("loading images", len(train) + len(val)) as advance:
            x_train, x_val = train.load(raw, progress=advance), val.load(raw, progress=advance)
        # Normalisation statistics from the training split only, recorded with every checkpoint.
        x_train, x_val, self.preprocessing = standardise(x_train, x_val, raw)
        data = in_memory_data((x_train, train.labels), (x_val, val.labels), preprocessing=self.preprocessing,
                              classes=train.classes)
        self.data_path = save_arrays(data, self.work / "data.npz")
        # The data's identity in the store's keys: the arrays themselves (an .npz's bytes carry a time stamp).
        digest = hashlib.sha256(json.dumps(self.preprocessing.to_dict(), sort_keys=True).encode())
        for array in (x_train, train.labels, x_val, val.labels):
            digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        self.data_key = digest.hexdigest()
        self.calibration_dir = self._link_images(train, self.work / "train_images")
        self._link_images(val, self.work / "val_images")  # for `edgekit bench --data` on held-out images
        self.classes = train.classes
        self.split_sizes = {"train": len(train), "val": len(val)}
        say(f"{len(self.classes)} classes: {len(train)} training and {len(val)} validation images "
            f"({total} input channels: {'gray' if channels == 1 else 'RGB'}"
            + (f" + {'+'.join(s.derived)}" if s.derived else "") + ")")

    @staticmethod
    def _link_images(images, folder: Path) -> Path:
        """The training split as an ImageFolder of symlinks: calibration never sees validation images."""
        shutil.rmtree(folder, ignore_errors=True)
        for path in images.files:
            link = folder / path.relative_to(images.root)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(path.resolve())
        return folder

    # -- candidates ---------------------------------------------------------------------------
    def train(self, batch: list[Candidate], *, epochs: int, label: str) -> None:
        parents = {c.id: next((p for p in self.candidates if p.id == c.parent), None) for c in batch}
        self.rounds.train(batch, parents, epochs=epochs, label=label)
        self.measure(batch)

    def decide(self, control: Candidate, children: list[Candidate]) -> Candidate:
        """The step's choice: its best child if it beats the control significantly, else the control
        (the parent's layout trained for the same budget): the table says which and why."""
        weight = self.settings.latency_weight
        for child in children:
            gain = gain_interval(self.rounds.correct[child.id], self.rounds.correct[control.id])
            child.gain, child.gain_low, child.gain_high = gain.mean, gain.low, gain.high
            # The score's latency term is one measurement, not resampled: it shifts the interval.
            latency_cost = weight * ((child.int8_p50_ms or 0.0) - (control.int8_p50_ms or 0.0))
            child.extra["score_gain_low"] = 100 * gain.low - latency_cost
            child.decision = "significant" if child.extra["score_gain_low"] > 0 else ""
        best = max(children, key=lambda c: c.score)
        if best.score > control.score and best.extra["score_gain_low"] > 0:
            best.decision = "adopted"
            return best
        best.decision = "no significant gain (parent kept)"
        control.decision = "kept (parent)"
        return control

    def measure(self, batch: list[Candidate]) -> None:
        """Params and MACs (torch flop counter); int8 and fp32 latency through the build stage."""
        target = load_target(self.settings.target)
        for candidate in batch:
            stats = model_stats(ModelConfig.from_dict(candidate.config))
            candidate.params, candidate.macs = stats["params"], stats["macs"]
            if target.runs_on_this_host:
                artifact = build_artifact(self.settings.model, target.name, self.work / "builds" / candidate.id,
                                          weights=candidate.checkpoint,
                                          options=BuildOptions(calib=self.calibration_dir, calib_size=self.settings.calib_size,
                                                               force=True))
                latency = read_manifest(artifact).latency_check.p50_ms
                candidate.fp32_p50_ms, candidate.int8_p50_ms = latency.get("fp32"), latency.get("int8")
            candidate.score = 100 * candidate.val_accuracy - self.settings.latency_weight * (candidate.int8_p50_ms or 0.0)

    def new(self, step: str, label: str, config, parent: Candidate | None) -> Candidate:
        candidate = Candidate(id=f"c{len(self.candidates):02d}", step=step, label=label,
                              config=config.to_dict(), parent=parent.id if parent else None)
        self.candidates.append(candidate)
        return candidate


def run_search(data_dir: str | Path, out: str | Path, settings: SearchSettings = SearchSettings(), *,
               force: bool = False) -> dict:
    """Run both steps; write results.json, results.csv, best_config.json and best.pt under ``out``.

    Trainings already finished by an earlier run of the same search (one that was interrupted, or
    the finished folder that ``force`` replaces) are taken from its store, not trained again.
    """
    target = load_target(settings.target)
    if settings.latency_weight and not target.runs_on_this_host:
        raise EdgekitError(f"--latency-weight needs latency measured here; target {target.name} is {target.arch}")
    plan = plan_output_folder(out, force=force, owner=owned_by(SEARCH_SCHEMA),
                              inputs={"data folder": data_dir, "target profile": target.source})
    executor = _executor(settings)  # Ray joined (or refused, in one line) before any image is read
    store = None
    try:
        store = TrainingStore(plan.path)
        # Everything else is written in a staging folder and published at the end: an interrupted
        # search leaves nothing at --out (its staging folder is swept by the next run) but its store.
        with atomic_folder(plan) as staging:
            search = _Search(Path(data_dir), staging, settings, executor=executor, store=store)
            summary = _run_steps(search, settings)
            write_folder_manifest(staging, {"kind": "two-step search", "data": str(data_dir)}, schema=SEARCH_SCHEMA)
    finally:
        executor.close()
        if store is not None:
            with contextlib.suppress(OSError):  # gone (moved into the output), or holds trainings to resume
                store.folder.rmdir()  # only when empty: a search that failed before its first training
    return summary


def _executor(settings: SearchSettings):
    if settings.executor == "ray":
        from edgekit.search.ray_executor import RayExecutor

        return RayExecutor(settings.ray_address, cpus=threads_per_candidate(settings),
                           gpus=settings.gpus_per_candidate)
    return LocalExecutor(settings.workers)


def _run_steps(search: _Search, settings: SearchSettings) -> dict:
    s = settings
    root_config = default_config(s.model, num_classes=len(search.classes),
                                 in_channels=search.preprocessing.total_channels, input_size=s.input_size)
    root = search.new("root", describe(root_config), root_config, None)
    say(f"root {s.model}: training from scratch for {s.root_epochs} epochs")
    search.train([root], epochs=s.root_epochs, label="root")

    current = chosen = root
    for round_index in range(s.max_rounds):
        config = ModelConfig.from_dict(current.config)
        child_configs = [with_replication(config, i) for i in eligible_blocks(config)][:s.max_candidates]
        if s.max_params:
            child_configs = [c for c in child_configs if model_stats(c)["params"] <= s.max_params]
        if not child_configs:
            say("no eligible replication within the parameter budget: step 1 stops")
            break
        control = search.new(f"1.{round_index + 1}", f"{describe(config)} (control: +{s.epochs} epochs, no change)",
                             config, current)
        children = [search.new(f"1.{round_index + 1}", describe(child), child, current) for child in child_configs]
        say(f"step 1, round {round_index + 1}: {len(children)} replications of {describe(config)} + control")
        search.train([control, *children], epochs=s.epochs, label=f"step 1 round {round_index + 1}")
        chosen = search.decide(control, children)
        if chosen is control:
            say(f"no replication beats the control significantly: step 1 stops at {describe(config)}")
            break
        current = chosen

    config = ModelConfig.from_dict(current.config)
    positions = [k for k in split_positions(config)
                 if (k in s.split_positions if s.split_positions else k <= s.max_split)][:s.max_candidates]
    if positions:
        control = search.new("2", f"{describe(config)} (control: +{s.epochs} epochs, no split)", config, current)
        splits = [search.new("2", describe(child), child, current)
                  for child in (with_split(config, k, merge=s.merge) for k in positions)]
        say(f"step 2: split positions {positions} of {describe(config)} + control")
        search.train([control, *splits], epochs=s.epochs, label="step 2")
        chosen = search.decide(control, splits)
    return _finish(search, search.out, chosen)


def _finish(search: _Search, out: Path, best: Candidate) -> dict:
    candidates = search.candidates
    mark_pareto(candidates)
    shutil.copyfile(best.checkpoint, out / "best.pt")
    (out / "best_config.json").write_text(json.dumps({"candidate": best.id, "label": best.label, "config": best.config,
                                                      "preprocessing": search.preprocessing.to_dict()}, indent=2) + "\n")
    stored = search.store.move_into(search.work)
    records = [asdict(c) for c in candidates]
    for record in records:  # relative: the folder is renamed into place when the search ends
        if record["checkpoint"]:
            moved = stored / Path(record["checkpoint"]).relative_to(search.store.folder)
            record["checkpoint"] = moved.relative_to(out).as_posix()
    summary = {"settings": asdict(search.settings), "classes": len(search.classes), "split": search.split_sizes,
               "best": best.id, "candidates": records}
    write_results(summary, out)
    return summary
