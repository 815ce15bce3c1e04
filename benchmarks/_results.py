"""Writing a benchmark's results: <out>/<name>.json (everything) and <out>/<name>.csv (flat rows)."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def write_results(out: Path, name: str, summary: dict, rows: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2) + "\n")
    with (out / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out / name}.json and .csv", file=sys.stderr)
