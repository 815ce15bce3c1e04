"""The artifact folder: described by manifest.json, verified by hashes before anything is read.

A manifest is untrusted input (an artifact arrives by copy, download or a shared drive): it is
validated against its schema (the records of edgekit.artifact.manifest), and every file edgekit reads
from the folder must be listed in ``files``, lie inside the folder without symlinks, and match
its size and sha256.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from edgekit.artifact.manifest import (
    SCHEMA,
    ArtifactManifest,
    FileRecord,
    ModelEntry,
    safe_name_problem,
)
from edgekit.core.errors import EdgekitError
from edgekit.core.hashing import sha256_file  # noqa: F401  (re-exported: edgekit.artifact.folder.sha256_file)
from edgekit.core.outputs import MANIFEST, owned_by, read_json_object

# --force may replace a folder only when it is an artifact edgekit wrote (see edgekit.core.outputs).
artifact_owner = owned_by(SCHEMA)


def file_hashes(folder: Path) -> dict[str, FileRecord]:
    """sha256 and size of every file in ``folder`` except the manifest itself."""
    return {
        p.relative_to(folder).as_posix(): FileRecord(sha256_file(p), p.stat().st_size)
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST
    }


def entry_bytes(folder: Path, entry: ModelEntry) -> int:
    """Bytes of a manifest model entry: its file plus companions (OpenVINO .bin, external data)."""
    return sum((folder / name).stat().st_size for name in entry.names)


def write_manifest(folder: Path, manifest: ArtifactManifest) -> None:
    """The artifact's manifest.json, listing (and hashing) every file now in ``folder``."""
    record = replace(manifest, files=file_hashes(folder)).to_dict()
    ArtifactManifest.from_dict(record, where=folder / MANIFEST)  # what edgekit writes, it can read back
    _write_json(folder, record)


def write_folder_manifest(folder: Path, fields: dict, *, schema: str) -> None:
    """The manifest of another folder edgekit owns (a pruned checkpoint, a search): ``fields`` and
    the hashes of its files, so that --force recognises it (edgekit.core.outputs.owned_by)."""
    if schema == SCHEMA:
        raise ValueError("an artifact's manifest is written from an ArtifactManifest (write_manifest)")
    _write_json(folder, {"schema": schema, **fields,
                         "files": {name: item.to_dict() for name, item in file_hashes(folder).items()}})


def _write_json(folder: Path, record: dict) -> None:
    # allow_nan=False: NaN/Infinity are not JSON; other tools would reject the file.
    (folder / MANIFEST).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")


def read_manifest(folder: str | Path) -> ArtifactManifest:
    """The validated manifest of an artifact whose every listed file matches its hash."""
    folder = Path(folder)
    if not folder.is_dir():
        raise EdgekitError(f"{folder} is not an edgekit artifact: not a folder")
    path = folder / MANIFEST
    if not path.exists() and not path.is_symlink():
        raise EdgekitError(f"{folder} is not an edgekit artifact: no {MANIFEST}")
    manifest = ArtifactManifest.from_dict(read_json_object(path, what="artifact manifest"), where=path)
    for name, record in manifest.files.items():
        verify_listed_file(folder, name, record)
    for entry in manifest.models:
        if entry.file.endswith(".onnx"):
            _check_external_data(folder, entry)
    return manifest


def _check_external_data(folder: Path, entry: ModelEntry) -> None:
    """An ONNX file may name external weight files; each must be one of its listed companions, or
    ONNX Runtime would read a file the manifest never vouched for."""
    import onnx
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    try:
        proto = onnx.load(str(folder / entry.file), load_external_data=False)
    except Exception as error:  # protobuf's DecodeError and friends
        raise EdgekitError(f"artifact file {entry.file} is not a readable ONNX model") from error
    base = entry.file.rpartition("/")[0]
    for tensor in _get_all_tensors(proto):
        if uses_external_data(tensor):
            location = next((item.value for item in tensor.external_data if item.key == "location"), "")
            name = f"{base}/{location}" if base else location
            if safe_name_problem(location) or name not in entry.companions:
                raise EdgekitError(f"artifact file {entry.file} reads external data {location!r}, which the "
                                   "manifest does not list as its companion; refused")


def verify_listed_file(folder: Path, name: str, record: FileRecord) -> Path:
    """``folder/name`` if it is a regular file inside ``folder`` (no symlinks) with the recorded hash."""
    path = folder / name
    inside = os.path.join(os.path.realpath(folder), *name.split("/"))
    if os.path.realpath(path) != inside or path.is_symlink():
        raise EdgekitError(f"artifact file {name} is a symbolic link or leads outside {folder}; refused")
    if not path.exists():
        raise EdgekitError(f"artifact file {name} listed in the manifest is missing")
    if not path.is_file():
        raise EdgekitError(f"artifact file {name} listed in the manifest is not a regular file")
    if path.stat().st_size != record.bytes or sha256_file(path) != record.sha256:
        raise EdgekitError(f"artifact file {name} does not match its sha256 in the manifest (modified?)")
    return path
