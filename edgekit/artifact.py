"""The artifact folder: written atomically, described by manifest.json, verified by hashes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgekit.errors import EdgekitError

MANIFEST = "manifest.json"
SCHEMA = "edgekit.artifact/1"


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


@contextlib.contextmanager
def atomic_folder(destination: Path, *, overwrite: bool, shareable: bool = True) -> Iterator[Path]:
    """Yield a temp folder beside ``destination``; rename it into place only if the block succeeds.

    A failure (or Ctrl-C) removes the temp folder, so ``destination`` is either the previous
    complete artifact or absent: never half-written. ``shareable`` opens the owner-only
    permissions of mkdtemp to the umask (artifacts); leave it off for trees whose modes matter.
    """
    destination = destination.resolve()
    if destination.exists() and not overwrite:
        raise EdgekitError(f"output folder {destination} already exists (use --force to replace it)")
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".partial", dir=destination.parent))
    try:
        yield staging
        if shareable:
            _make_readable(staging)
        if destination.exists():
            old = destination.with_name(f".{destination.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            destination.rename(old)
            staging.rename(destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _make_readable(folder: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; an artifact is meant to be copied and shared."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def entry_bytes(folder: Path, entry: dict) -> int:
    """Bytes of a manifest model entry: its file plus companions (OpenVINO .bin, external data)."""
    return sum((folder / name).stat().st_size for name in [entry["file"], *entry.get("companions", [])])


def write_manifest(folder: Path, manifest: dict) -> None:
    manifest = {"schema": SCHEMA, **manifest, "files": file_hashes(folder)}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(folder: str | Path, *, verify: bool = True) -> dict:
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise EdgekitError(f"{folder} is not an edgekit artifact: no {MANIFEST}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise EdgekitError(f"{path} is not valid JSON") from error
    if manifest.get("schema") != SCHEMA:
        raise EdgekitError(f"{path} has schema {manifest.get('schema')!r}, expected {SCHEMA!r}")
    if verify:
        for name, record in manifest["files"].items():
            file = folder / name
            if not file.is_file():
                raise EdgekitError(f"artifact file {name} listed in the manifest is missing")
            if sha256_file(file) != record["sha256"]:
                raise EdgekitError(f"artifact file {name} does not match its sha256 in the manifest (modified?)")
    return manifest
