"""``edgekit diff``: where an artifact's int8 model loses accuracy, layer by layer and across runtimes.

Per layer (edgekit.diff.layers): every tensor of the int8 QDQ model against the fp32 ONNX
model's, SQNR in graph order, with the loss each node adds, whether it runs quantized and which int8
kernel ONNX Runtime fuses it into. At the output (edgekit.diff.outputs): PyTorch, ONNX
Runtime and OpenVINO, fp32 and int8, on the same images, against the fp32 reference.

Only files the manifest lists are read, and each is copied into a private scratch folder and
checked against its sha256 there, so what ONNX Runtime and OpenVINO load is what was hashed.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from edgekit.artifact.folder import read_manifest, verify_listed_file
from edgekit.artifact.manifest import ArtifactManifest, ModelEntry
from edgekit.benchmark.run import output_labels
from edgekit.core.checks import require_int
from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import (
    has_schema,
    plan_output_file,
    scratch_folder,
    write_planned_file,
)
from edgekit.core.progress import say
from edgekit.data import ImageSet, find_images
from edgekit.diff.report import REPORT_SCHEMA, DiffReport, LayerReport

LAYER_IMAGES = 64  # per-layer statistics: every intermediate tensor of both models is computed
OUTPUT_IMAGES = 500  # at the output: logits only, so more images are cheap
MAX_IMAGES = 100_000
COST_IMAGES = 256  # the output cost keeps its images decoded: one model run per Q/DQ pair
CHUNK = 32  # images decoded at a time
RANGE_PAIRS = 32  # the costliest activations whose range choice is costed too (two runs each)


def diff_artifact(artifact: str | Path, *, data: str | Path | None = None, images: int = LAYER_IMAGES,
                  output_images: int = OUTPUT_IMAGES, json_path: str | Path | None = None,
                  output_cost: bool = True, speed: bool = True) -> DiffReport:
    """Compare the artifact's int8 model with fp32, per layer on ``images`` images and at the output
    of every runtime on up to ``output_images``; with ``output_cost``, also each Q/DQ pair of an ONNX
    Runtime int8 model alone at the output (on up to COST_IMAGES of the per-layer images); with
    ``speed``, ONNX Runtime's per-node profile of both models and the int8 model's slowest nodes by
    pattern (edgekit.diff.speed). Inputs are all checked before any model runs."""
    require_int("--images", images, 1, MAX_IMAGES)
    require_int("--output-images", output_images, 1, MAX_IMAGES)
    folder = Path(artifact)
    manifest = read_manifest(folder)
    if not any(entry.precision == "int8" for entry in manifest.models):
        raise EdgekitError(f"{folder} has no int8 model to compare with fp32 (built with --fp32-only, or "
                           f"quantization skipped: {manifest.quantization.skipped if manifest.quantization else '-'})")
    forbidden = {"artifact": folder.resolve(), **({"data folder": Path(data)} if data is not None else {})}
    json_plan = plan_output_file(json_path, option="--json", recognise=has_schema(REPORT_SCHEMA),
                                 forbidden=forbidden) if json_path else None
    pool, source = comparison_images(manifest, data)
    layer_set, output_set = pool.subset(images, seed=0), pool.subset(output_images, seed=0)
    labels = _labels(output_set, manifest, pool.root, strict=data is not None)
    say(f"comparing on images from {source}: {len(layer_set)} per layer, {len(output_set)} at the output")
    threads = manifest.target.threads
    with scratch_folder("diff") as scratch:
        copies = verified_copies(folder, manifest, scratch / "artifact")
        layers, note = _layers(manifest, copies, layer_set, scratch)
        cost = _output_cost(manifest, copies, layer_set, scratch) if output_cost and layers is not None else None
        from edgekit.diff.outputs import compare_outputs

        outputs = compare_outputs(manifest, copies, _chunks(output_set, manifest, labels), threads=threads)
        timed = _speed(manifest, copies, layer_set, scratch) if speed else None
    report = DiffReport(str(folder), manifest.model.name, manifest.target.name, str(source),
                        labels is not None, len(output_set), outputs, layers, note, cost, timed)
    if json_plan:
        write_planned_file(json_plan, json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    return report


def comparison_images(manifest: ArtifactManifest, data: str | Path | None) -> tuple[ImageSet, str]:
    """``--data`` (an ImageFolder tree or a flat folder), else the calibration folder the manifest
    names if it is still there."""
    if data is not None:
        return find_images(data, purpose="--data"), str(data)
    calibration = manifest.quantization.calibration if manifest.quantization else None
    source = calibration.source if calibration else None
    if not source or not Path(source).is_dir():
        where = f"the calibration folder {source} recorded in the manifest no longer exists" if source else \
            "the manifest records no calibration folder"
        raise EdgekitError(f"no images to compare on: {where}; pass --data DIR")
    return find_images(source, purpose="calibration"), f"{source} (the calibration images: in-sample)"


def _labels(images: ImageSet, manifest: ArtifactManifest, root: Path, *, strict: bool) -> list[int] | None:
    """Output indices of the images' classes when the folder is labelled. For --data a mismatch is an
    error (as in bench); the calibration folder's sub-folders need not be classes, so there it is not."""
    if images.labels is None:
        return None
    try:
        return output_labels(images, manifest, root)
    except EdgekitError:
        if strict:
            raise
        return None


def verified_copies(folder: Path, manifest: ArtifactManifest, into: Path) -> dict[str, Path]:
    """Each model file (and companions) copied into ``into`` and checked against the manifest there."""
    copies = {}
    for entry in manifest.models:
        for name in entry.names:
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(verify_listed_file(folder, name, manifest.files[name]), target)
            verify_listed_file(into, name, manifest.files[name])
        copies[entry.file] = into / entry.file
    return copies


def _chunks(images: ImageSet, manifest: ArtifactManifest, labels: list[int] | None = None) -> Iterator:
    """(preprocessed images, their labels) CHUNK at a time, so memory does not grow with the image count."""
    for start in range(0, len(images), CHUNK):
        part = ImageSet(images.root, images.files[start:start + CHUNK])
        yield part.load(manifest.preprocessing), (labels[start:start + CHUNK] if labels is not None else None)


def _entry(manifest: ArtifactManifest, runtime: str, precision: str) -> ModelEntry | None:
    return next((e for e in manifest.models if e.runtime == runtime and e.precision == precision), None)


def _layers(manifest: ArtifactManifest, copies: dict[str, Path], images: ImageSet,
            scratch: Path) -> tuple[LayerReport | None, str | None]:
    fp32, int8 = _entry(manifest, "onnxruntime", "fp32"), _entry(manifest, "onnxruntime", "int8")
    if int8 is None:
        return _openvino_layers(manifest, copies, images)
    if fp32 is None:
        return None, f"the artifact lists no fp32 ONNX model to compare {int8.file} with, layer by layer"
    if not _is_qdq(copies[int8.file]):
        return None, f"{int8.file} has no QuantizeLinear/DequantizeLinear pairs (not a QDQ model)"
    from edgekit.diff.layers import compare_layers

    say(f"comparing every tensor of {int8.file} with {fp32.file} on {len(images)} images")
    shape = manifest.input.shape
    static = None if manifest.input.dynamic_batch is not False else shape[0]
    arrays = (array for array, _ in _chunks(images, manifest))
    work = scratch / "layers"
    work.mkdir()
    return compare_layers(copies[fp32.file], copies[int8.file], arrays, scratch=work, fp32_label=fp32.file,
                          int8_label=int8.file, static_batch=static), None


def _speed(manifest: ArtifactManifest, copies: dict[str, Path], images: ImageSet, scratch: Path):
    fp32, int8 = _entry(manifest, "onnxruntime", "fp32"), _entry(manifest, "onnxruntime", "int8")
    if fp32 is None or int8 is None:
        return None
    from edgekit.diff.speed import profile_speed

    say(f"profiling {fp32.file} and {int8.file} node by node (ONNX Runtime, {manifest.target.threads} threads)")
    sample, _ = next(_chunks(images.subset(1, seed=0), manifest))
    return profile_speed(copies[fp32.file], copies[int8.file], sample, threads=manifest.target.threads,
                         scratch=scratch / "speed", fp32_label=fp32.file, int8_label=int8.file)


def _output_cost(manifest: ArtifactManifest, copies: dict[str, Path], images: ImageSet, scratch: Path):
    fp32, int8 = _entry(manifest, "onnxruntime", "fp32"), _entry(manifest, "onnxruntime", "int8")
    if fp32 is None or int8 is None or not _is_qdq(copies[int8.file]):
        return None  # OpenVINO's FakeQuantize graphs: not done (yet)
    import onnx

    from edgekit.core.progress import progress
    from edgekit.diff.cost import PairModels, output_costs, pair_count
    from edgekit.diff.ranges import range_choices

    used = images.subset(min(len(images), COST_IMAGES), seed=0)
    array = used.load(manifest.preprocessing)
    work = scratch / "output_cost"
    work.mkdir()
    with progress(f"output cost of each Q/DQ pair ({len(used)} images)", pair_count(copies[int8.file])) as advance:
        models = PairModels(copies[fp32.file], onnx.load(str(copies[int8.file])).graph, scratch=work,
                            threads=manifest.target.threads)
        cost = output_costs(models, copies[int8.file], array, advance=advance)
    say(f"range choice of up to {RANGE_PAIRS} of the costliest activations")
    return replace(cost, ranges=range_choices(models, copies[int8.file], cost, array, limit=RANGE_PAIRS))


def _openvino_layers(manifest: ArtifactManifest, copies: dict[str, Path],
                     images: ImageSet) -> tuple[LayerReport | None, str | None]:
    fp32, int8 = _entry(manifest, "openvino", "fp32"), _entry(manifest, "openvino", "int8")
    if fp32 is None or int8 is None:
        return None, "the artifact has no fp32 and int8 model of one runtime to compare layer by layer"
    from edgekit.diff.openvino import compare_openvino_layers

    say(f"comparing every op of {int8.file} with {fp32.file} on {len(images)} images")
    arrays = (array for array, _ in _chunks(images, manifest))
    return compare_openvino_layers(copies[fp32.file], copies[int8.file], arrays, fp32_label=fp32.file,
                                   int8_label=int8.file, threads=manifest.target.threads), None


def _is_qdq(path: Path) -> bool:
    import onnx

    return any(node.op_type == "QuantizeLinear" for node in onnx.load(str(path), load_external_data=False).graph.node)

