"""The per-epoch log: ``log.json`` (a list of records) and ``log.csv`` (the same, one row per epoch)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)  # readers never see a half-written log


def write_log(out: Path, history: list[dict]) -> None:
    _replace(out / "log.json", json.dumps(history, indent=2) + "\n")
    columns = list(dict.fromkeys(key for record in history for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    _replace(out / "log.csv", buffer.getvalue())


def read_log(out: Path) -> list[dict]:
    return json.loads((Path(out) / "log.json").read_text())
