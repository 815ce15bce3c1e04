"""Shared fixtures: a learnable synthetic image task, a tiny model trained on it, built artifacts.

Everything is generated here, so the suite runs on a fresh clone with no datasets.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("EDGEKIT_NO_PROGRESS", "1")

CLASSES = ("horizontal", "vertical", "checker", "blob")


def this_cpu() -> dict:
    """What the int8 results of this run depend on: the ISA level and ORT's int8 kernel path."""
    from edgekit.targets.isa import build_host_record
    from edgekit.quantize.int8_graph import exact_rewrite_active_here

    record = build_host_record(runtime="onnxruntime", kernels="exact", weight_bits=8)
    if record["arch"] == "x86_64":
        record["exact_option_rewrite_active"] = exact_rewrite_active_here()
    return record


def pytest_terminal_summary(terminalreporter) -> None:
    """Every test log says which CPU it ran on (-q too): int8 results differ by ISA level
    (tests/quantize/test_x86_int8_paths.py)."""
    terminalreporter.write_sep("-", "edgekit int8 host")
    terminalreporter.write_line(", ".join(f"{key}={value}" for key, value in this_cpu().items()))
SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _pattern(kind: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    period = rng.integers(4, 9)
    phase = rng.integers(0, period)
    if kind == "horizontal":
        mask = ((yy + phase) // (period // 2)) % 2
    elif kind == "vertical":
        mask = ((xx + phase) // (period // 2)) % 2
    elif kind == "checker":
        mask = (((yy + phase) // (period // 2)) + ((xx + phase) // (period // 2))) % 2
    else:
        cy, cx = rng.integers(8, 24, size=2)
        mask = ((yy - cy) ** 2 + (xx - cx) ** 2 < rng.integers(20, 60)).astype(int)
    colour = rng.uniform(0.5, 1.0, size=3)
    image = mask[..., None] * colour + rng.normal(0, 0.12, size=(size, size, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def write_pattern_dataset(root: Path, per_class: int, seed: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    for kind in CLASSES:
        (root / kind).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            Image.fromarray(_pattern(kind, rng)).save(root / kind / f"{index:03d}.png")
    return root


@pytest.fixture(scope="session")
def pattern_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("patterns")
    return {"train": write_pattern_dataset(root / "train", per_class=80, seed=1),
            "val": write_pattern_dataset(root / "val", per_class=25, seed=2)}


@pytest.fixture(scope="session")
def trained_tiny(pattern_data, tmp_path_factory) -> dict:
    """tiny_cnn trained on the pattern task; returns the checkpoint path and validation accuracy."""
    from edgekit.data import labelled_images
    from edgekit.models import build_model, default_config, get_spec, save_checkpoint
    from edgekit.train.data import in_memory_data
    from edgekit.train.epochs import LoopSettings, evaluate, fit
    from edgekit.train.recipes import IN_MEMORY_RECIPE, get_recipe

    config = default_config("tiny_cnn", num_classes=len(CLASSES))
    preprocessing = get_spec("tiny_cnn").preprocessing()
    train, val = labelled_images(pattern_data["train"]), labelled_images(pattern_data["val"])
    x_train, x_val = train.load(preprocessing), val.load(preprocessing)
    data = in_memory_data((x_train, train.labels), (x_val, val.labels), preprocessing=preprocessing,
                          classes=train.classes)
    model = build_model(config)
    recipe = get_recipe(IN_MEMORY_RECIPE).with_overrides(epochs=8, batch_size=32, lr=1e-2)
    fit(model, data, LoopSettings(recipe))
    path = save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", config, model.state_dict(),
                           classes=train.classes)
    return {"checkpoint": path, "val_accuracy": evaluate(model, data.val)["val_accuracy"],
            "model": model, "x_val": x_val, "y_val": np.asarray(val.labels)}


def build_tiny(target: str, out: Path, pattern_data, trained_tiny, **options) -> Path:
    from edgekit.builder.pipeline import BuildOptions, build_artifact

    options.setdefault("calib", pattern_data["train"])
    options.setdefault("calib_size", 64)
    return build_artifact("tiny_cnn", target, out, weights=trained_tiny["checkpoint"],
                          options=BuildOptions(**options))


@pytest.fixture(scope="session")
def cpu_artifact(pattern_data, trained_tiny, tmp_path_factory) -> Path:
    return build_tiny("cpu", tmp_path_factory.mktemp("build") / "tiny-cpu", pattern_data, trained_tiny)


@pytest.fixture(scope="session")
def openvino_artifact(pattern_data, trained_tiny, tmp_path_factory) -> Path:
    return build_tiny("openvino", tmp_path_factory.mktemp("build") / "tiny-ov", pattern_data, trained_tiny)


@pytest.fixture(scope="session")
def rpi4_artifact(pattern_data, trained_tiny, tmp_path_factory) -> Path:
    return build_tiny("rpi4", tmp_path_factory.mktemp("build") / "tiny-rpi4", pattern_data, trained_tiny)


# --pretrained without any real download. A published file's name carries the first hex digits of
# its sha256 (shufflenetv2_x0.5-f707e7126e.pth) and no fake file can have torchvision's hash, so the
# fake is a freshly initialised network saved under a name with *its own* hash prefix and the
# weights' URL is monkeypatched to that name: edgekit's hash check runs for real, on a matching and
# on a mismatching file.
FAKE_PUBLISHED = "shufflenet_v2_x0_5"  # 1.4 M parameters: a 5.6 MB fake


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """An empty torch hub cache (TORCH_HOME), and a download function that records the URL and fails."""
    import torch
    from urllib.error import URLError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    attempts = []

    def offline(url, dst, hash_prefix=None, progress=True):
        attempts.append(url)
        raise URLError("network blocked by the test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return {"checkpoints": tmp_path / "torch" / "hub" / "checkpoints", "attempts": attempts}


def publish_fake(hub, monkeypatch, *, matching_hash: bool = True) -> dict:
    """A fresh network's state_dict in the cache under a torchvision-style name; the weights' URL points at it."""
    import torch
    from torchvision.models import get_model_weights

    from edgekit.core.hashing import sha256_file
    from edgekit.models import build_model, default_config

    torch.manual_seed(0)
    state_dict = build_model(default_config(f"torchvision:{FAKE_PUBLISHED}")).state_dict()
    hub["checkpoints"].mkdir(parents=True, exist_ok=True)
    scratch = hub["checkpoints"] / "scratch.pth"
    torch.save(state_dict, scratch)
    prefix = sha256_file(scratch)[:10] if matching_hash else "0123456789"
    path = scratch.rename(hub["checkpoints"] / f"shufflenetv2_x0.5-{prefix}.pth")
    member = get_model_weights(FAKE_PUBLISHED).DEFAULT
    monkeypatch.setattr(member.value, "url", f"https://download.pytorch.org/models/{path.name}")
    return {"path": path, "state_dict": state_dict}


# ---- pretending another x86 ISA level (tests/quantize/test_x86_int8_paths.py has the why) -----------------
AVX2 = {"AVX2": True, "AVX512F": False, "AVX512VNNI": False}  # Haswell .. Zen 3
AVX512 = {"AVX2": True, "AVX512F": True, "AVX512VNNI": False}  # Skylake-SP
VNNI = {"AVX2": True, "AVX512F": True, "AVX512VNNI": True}  # Cascade Lake, Zen 4, Sapphire Rapids
CPUS = {"avx2": ("x86_64", AVX2), "avx512": ("x86_64", AVX512), "avx512_vnni": ("x86_64", VNNI),
        "unknown x86": ("x86_64", {}), "aarch64": ("aarch64", {})}
SATURATES = {"avx2": True, "avx512": True, "avx512_vnni": False, "unknown x86": True, "aarch64": False}


@pytest.fixture()
def pretend_cpu(monkeypatch):
    """Make edgekit see another CPU: ``pretend_cpu("avx2")``."""
    from edgekit.runtimes import board_runner

    def pretend(name: str) -> None:
        machine, features = CPUS[name]
        monkeypatch.setattr(board_runner.platform, "machine", lambda: machine)
        monkeypatch.setattr(board_runner, "cpuid_features", lambda: dict(features))
        board_runner.int8_saturates_here.cache_clear()

    yield pretend
    board_runner.int8_saturates_here.cache_clear()  # before monkeypatch restores the real CPU


