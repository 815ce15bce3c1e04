"""The artifact folder: described by manifest.json, verified by hashes before anything is read.

A manifest is untrusted input (an artifact arrives by copy, download or a shared drive): it is
validated against its schema, and every file edgekit reads from the folder must be listed in
``files``, lie inside the folder without symlinks, and match its size and sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from edgekit.checks import is_integer
from edgekit.data.preprocessing import Preprocessing
from edgekit.errors import EdgekitError
from edgekit.models._registry import ModelConfig
from edgekit.models.weights import class_names_problem
from edgekit.outputs import MANIFEST, owned_by, read_json_object

SCHEMA = "edgekit.artifact/1"
RUNTIMES = ("pytorch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8")
MAX_THREADS = 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

# --force may replace a folder only when it is an artifact edgekit wrote (see edgekit.outputs).
artifact_owner = owned_by(SCHEMA)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, dict]:
    """sha256 and size of every file in ``folder`` except the manifest itself."""
    return {
        p.relative_to(folder).as_posix(): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


def entry_bytes(folder: Path, entry: dict) -> int:
    """Bytes of a manifest model entry: its file plus companions (OpenVINO .bin, external data)."""
    return sum((folder / name).stat().st_size for name in [entry["file"], *entry.get("companions", [])])


def write_manifest(folder: Path, manifest: dict, *, schema: str = SCHEMA) -> None:
    manifest = {"schema": schema, **manifest, "files": file_hashes(folder)}
    if schema == SCHEMA:
        validate_manifest(manifest, folder / MANIFEST)  # what edgekit writes, it can read back
    # allow_nan=False: NaN/Infinity are not JSON; other tools would reject the file.
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")


def read_manifest(folder: str | Path) -> dict:
    """The validated manifest of an artifact whose every listed file matches its hash."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgekitError(f"{folder} is not an edgekit artifact: not a folder")
    path = folder / MANIFEST
    if not path.exists() and not path.is_symlink():
        raise EdgekitError(f"{folder} is not an edgekit artifact: no {MANIFEST}")
    manifest = read_json_object(path, what="artifact manifest")
    if manifest.get("schema") != SCHEMA:
        raise EdgekitError(f"{path} has schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    validate_manifest(manifest, path)
    for name, record in manifest["files"].items():
        verify_listed_file(folder, name, record)
    for entry in manifest["models"]:
        if entry["file"].endswith(".onnx"):
            _check_external_data(folder, entry)
    return manifest


def _check_external_data(folder: Path, entry: dict) -> None:
    """An ONNX file may name external weight files; each must be one of its listed companions, or
    ONNX Runtime would read a file the manifest never vouched for."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    try:
        proto = onnx.load(str(folder / entry["file"]), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        raise EdgekitError(f"artifact file {entry['file']} is not a readable ONNX model") from error
    base = entry["file"].rpartition("/")[0]
    for tensor in _get_all_tensors(proto):
        if uses_external_data(tensor):
            location = next((item.value for item in tensor.external_data if item.key == "location"), "")
            name = f"{base}/{location}" if base else location
            if _safe_name_problem(location) or name not in entry.get("companions", []):
                raise EdgekitError(f"artifact file {entry['file']} reads external data {location!r}, which the "
                                   "manifest does not list as its companion; refused")


def verify_listed_file(folder: Path, name: str, record: dict) -> Path:
    """``folder/name`` if it is a regular file inside ``folder`` (no symlinks) with the recorded hash."""
    path = folder / name
    inside = os.path.join(os.path.realpath(folder), *name.split("/"))
    if os.path.realpath(path) != inside or path.is_symlink():
        raise EdgekitError(f"artifact file {name} is a symbolic link or leads outside {folder}; refused")
    if not path.exists():
        raise EdgekitError(f"artifact file {name} listed in the manifest is missing")
    if not path.is_file():
        raise EdgekitError(f"artifact file {name} listed in the manifest is not a regular file")
    if path.stat().st_size != record["bytes"] or sha256_file(path) != record["sha256"]:
        raise EdgekitError(f"artifact file {name} does not match its sha256 in the manifest (modified?)")
    return path


# ---- the schema -----------------------------------------------------------------------------------

def validate_manifest(manifest: dict, path: Path) -> None:
    """One-line error naming the first field that does not fit the artifact schema."""
    problem = _manifest_problem(manifest)
    if problem:
        raise EdgekitError(f"{path} is not a valid edgekit manifest: {problem}")


def _manifest_problem(manifest: dict) -> str | None:
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return "'files' must be an object of file name -> {sha256, bytes}"
    for name, record in files.items():
        problem = _safe_name_problem(name) or _file_record_problem(record)
        if problem:
            return f"files[{name!r}]: {problem}"
    for check in (_models_problem, _input_problem, _target_problem, _model_problem):
        problem = check(manifest)
        if problem:
            return problem
    return None


def _safe_name_problem(name) -> str | None:
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name or name.startswith("/"):
        return "not a relative file name"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "names a path outside the artifact or an unusual path"
    if name == MANIFEST:
        return "the manifest cannot list itself"
    return None


def _file_record_problem(record) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("sha256"), str) \
            or not _SHA256.match(record["sha256"]):
        return "needs a 64-hex-digit 'sha256'"
    if not is_integer(record.get("bytes")) or record["bytes"] < 0:
        return "needs a non-negative integer 'bytes'"
    return None


def _models_problem(manifest: dict) -> str | None:
    models = manifest.get("models")
    if not isinstance(models, list) or not models:
        return "'models' must be a non-empty list"
    for index, entry in enumerate(models):
        where = f"models[{index}]"
        if not isinstance(entry, dict):
            return f"{where} is not an object"
        if entry.get("runtime") not in RUNTIMES:
            return f"{where}.runtime must be one of {', '.join(RUNTIMES)}"
        if entry.get("precision") not in PRECISIONS:
            return f"{where}.precision must be one of {', '.join(PRECISIONS)}"
        companions = entry.get("companions", [])
        if not isinstance(companions, list):
            return f"{where}.companions must be a list"
        for name in [entry.get("file"), *companions]:
            if not isinstance(name, str) or name not in manifest["files"]:
                return f"{where} names {name!r}, which 'files' does not list (and hash)"
    return None


def _input_problem(manifest: dict) -> str | None:
    shape = (manifest.get("input") or {}).get("shape") if isinstance(manifest.get("input"), dict) else None
    if not isinstance(shape, list) or len(shape) != 4 or not all(is_integer(v) and v > 0 for v in shape):
        return "input.shape must be four positive integers (N, C, H, W)"
    record = manifest.get("preprocessing")
    if not isinstance(record, dict):
        return "'preprocessing' must be an object"
    try:
        preprocessing = Preprocessing.from_dict(record)
    except (ValueError, TypeError, KeyError) as error:
        return f"preprocessing: {error}"
    if tuple(shape[1:]) != preprocessing.input_shape[1:]:
        return f"input.shape {shape} does not match the preprocessing ({list(preprocessing.input_shape[1:])})"
    return None


def _target_problem(manifest: dict) -> str | None:
    target = manifest.get("target")
    if not isinstance(target, dict) or not isinstance(target.get("name"), str):
        return "'target' must be an object with a 'name'"
    threads = target.get("threads")
    if not is_integer(threads) or not 1 <= threads <= MAX_THREADS:
        return f"target.threads must be an integer from 1 to {MAX_THREADS}"
    if target.get("runtime") not in RUNTIMES[1:]:
        return "target.runtime must be onnxruntime or openvino"
    if target.get("inference_precision") is not None and not isinstance(target["inference_precision"], str):
        return "target.inference_precision must be a string"
    return None


def _model_problem(manifest: dict) -> str | None:
    model = manifest.get("model")
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        return "'model' must be an object with a 'name'"
    config = None
    if model.get("config") is not None:
        try:
            config = ModelConfig.from_dict(model["config"])
        except EdgekitError as error:
            return f"model.config: {error}"
    if manifest.get("classes") is not None:
        return class_names_problem(manifest["classes"], config.num_classes if config else None)
    return None

