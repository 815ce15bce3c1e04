"""The offline default: a real build and benchmark with nothing but the installed packages.

scikit-learn ships the UCI handwritten digits (1,797 8x8 images, 10 classes). The demo writes
them as PNG files in ImageFolder layout (so the same image-loading path as a user's data is
exercised), trains ``small_cnn`` on 80% of them, builds an int8 artifact for the ``cpu`` target
calibrated on training images, and benchmarks it on the held-out 20% with accuracy (JSON, CSV, a
Markdown report and a latency/accuracy/size plot).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgekit.benchmark.table import print_bench_table
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import check_folder_location
from edgekit.core.progress import say
from edgekit.data import labelled_images

MODEL = "small_cnn"
EPOCHS = 10
MARKER = "edgekit-demo.json"  # marks a folder as the demo's own: a rerun may rewrite it


def write_digits(root: Path, *, val_fraction: float = 0.2, seed: int = 0) -> tuple[Path, Path]:
    """digits -> root/{train,val}/<digit>/<index>.png, split per class, deterministic."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for label in range(10):
            (root / split / str(label)).mkdir(parents=True, exist_ok=True)
    for label in range(10):
        indices = np.flatnonzero(digits.target == label)
        rng.shuffle(indices)
        n_val = round(len(indices) * val_fraction)
        for position, index in enumerate(indices):
            split = "val" if position < n_val else "train"
            pixels = (digits.images[index] * (255.0 / 16.0)).round().astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / split / str(label) / f"{index:04d}.png")
    return root / "train", root / "val"


def _claim_workdir(workdir: Path) -> Path:
    """The demo rewrites its own folder on every run, so it must be new, empty or an earlier demo's."""
    check_folder_location(workdir, option="--workdir")
    marker = workdir / MARKER
    if workdir.is_dir() and any(workdir.iterdir()) and not marker.is_file():
        raise EdgekitError(f"--workdir {workdir} holds files edgekit did not write; choose a new or empty folder")
    workdir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"schema": "edgekit.demo/1", "model": MODEL}) + "\n")
    return workdir


def train_demo_model(workdir: Path, *, epochs: int | None = None) -> tuple[Path, Path, Path]:
    """Digits -> ``small_cnn`` checkpoint that records its class names and preprocessing.

    Returns (checkpoint, training folder, validation folder). The class names travel from the
    checkpoint into the artifact's manifest, so bench maps the evaluation folders to outputs by name.
    """
    # Imported here, not at the top: cli.py imports this module, and these import torch.
    from edgekit.models import build_model, default_config, get_spec, save_checkpoint
    from edgekit.train.data import in_memory_data
    from edgekit.train.epochs import LoopSettings, fit
    from edgekit.train.recipes import IN_MEMORY_RECIPE, get_recipe

    train_dir, val_dir = write_digits(workdir / "digits")
    config = default_config(MODEL, num_classes=10, in_channels=1)
    preprocessing = get_spec(MODEL).preprocessing(in_channels=1)
    train, val = labelled_images(train_dir), labelled_images(val_dir)
    say(f"digits: {len(train)} training and {len(val)} held-out images, upscaled 8x8 -> 32x32 grayscale")
    data = in_memory_data((train.load(preprocessing), train.labels), (val.load(preprocessing), val.labels),
                          preprocessing=preprocessing, classes=train.classes)
    model = build_model(config)
    history = fit(model, data, LoopSettings(get_recipe(IN_MEMORY_RECIPE).with_overrides(epochs=epochs or EPOCHS)))
    last = history[-1]
    say(f"trained {len(history)} epochs: loss {last['train_loss']:.3f}, "
        f"validation accuracy {100 * last['val_accuracy']:.1f}%")
    # Output i is train.classes[i] (the training folders' names); recorded like `edgekit train` does.
    checkpoint = save_checkpoint(workdir / f"{MODEL}_digits.pt", config, model.state_dict(),
                                 preprocessing=preprocessing.to_dict(), classes=list(train.classes))
    return checkpoint, train_dir, val_dir


def run_demo(workdir: str | Path = "demo-output", *, epochs: int | None = None) -> dict:
    # Imported here, not at the top: cli.py imports this module, and these import torch.
    from edgekit.benchmark.run import bench_artifact
    from edgekit.builder.pipeline import BuildOptions, build_artifact

    workdir = _claim_workdir(Path(workdir))
    checkpoint, train_dir, val_dir = train_demo_model(workdir, epochs=epochs)
    artifact = build_artifact(MODEL, "cpu", workdir / f"{MODEL}-digits-cpu", weights=checkpoint,
                              options=BuildOptions(calib=train_dir, calib_size=300, force=True))
    results = {suffix: workdir / f"bench.{suffix}" for suffix in ("json", "csv", "md", "png")}
    report = bench_artifact(artifact, data=val_dir, json_path=results["json"], csv_path=results["csv"],
                            report_path=results["md"], plot_path=results["png"])
    print_bench_table(report)
    say(f"artifact: {artifact}  (REPORT.md, manifest.json); results: {', '.join(map(str, results.values()))}")
    return json.loads((workdir / "bench.json").read_text())
