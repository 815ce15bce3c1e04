"""sha256 of a file, streamed: a leaf module, so that models (a user module's source, cached weights)
and the artifact (every file it lists) hash the same way without importing each other."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
