"""The per-epoch log: ``log.json`` (a list of records) and ``log.csv`` (the same, one row per epoch)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from edgekit.core.outputs import temp_file_beside


def replace_text(path: Path, text: str) -> None:
    tmp = Path(temp_file_beside(path))
    try:
        tmp.write_text(text)
        tmp.replace(path)  # readers never see a half-written log
    finally:
        tmp.unlink(missing_ok=True)


def write_log(out: Path, history: list[dict]) -> None:
    replace_text(out / "log.json", json.dumps(history, indent=2) + "\n")
    columns = list(dict.fromkeys(key for record in history for key in record))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(history)
    replace_text(out / "log.csv", buffer.getvalue())


def read_log(out: Path) -> list[dict]:
    return json.loads((Path(out) / "log.json").read_text())
