"""`edgekit search` on CIFAR-10 with --repeats, run by the local executor, by an embedded Ray, and
across a two-node Ray cluster started on this machine.

    .venv/bin/python benchmarks/search_ray.py --runs local,ray --name cifar10_local_vs_ray
    .venv/bin/python benchmarks/search_ray.py --runs multinode --name multinode --train-per-class 10 \
        --val-per-class 10 --root-epochs 1 --max-candidates 1 --max-split 1 --batch-size 16

Each search runs in a fresh driver process (``--one``) that reports its own wall time and peak RSS
(``RUSAGE_SELF``: the driver alone; worker processes and Ray's daemons are not counted). Records:
the table (mean accuracy with 95% interval, gain over the control, decision), the chosen model,
the nodes each training ran on, wall-clock times and the Ray/local ratio (target <= 1.10), driver
peak memory (target < 2 GB). Latency is not measured (``--target rpi4``): both executors would pay
the same serial builds, which only dilutes the comparison.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._ray_cluster import keep_loopback, loopback_env, two_node_cluster  # noqa: E402
from benchmarks._results import write_results  # noqa: E402


def link_subset(data: Path, work: Path, per_class: int, seed: int = 0) -> Path:
    """``per_class`` images of every class as symlinks (the dataset is never copied)."""
    folder = work / f"cifar10-{per_class}"
    rng = random.Random(seed)
    for cls in sorted(p for p in data.iterdir() if p.is_dir()):
        files = sorted(cls.iterdir())
        for source in sorted(rng.sample(files, per_class)):
            link = folder / cls.name / source.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(source.resolve())
    return folder


def one_search(args) -> None:
    """In its own process: one search, then wall time, peak RSS and the summary as JSON on stdout's last line."""
    from edgekit.search.two_step import SearchSettings, run_search

    settings = SearchSettings(root_epochs=args.root_epochs, epochs=args.epochs, repeats=args.repeats,
                              max_rounds=args.max_rounds, max_candidates=args.max_candidates, max_split=args.max_split,
                              workers=args.workers, val_fraction=args.val_fraction, target="rpi4",
                              executor="local" if args.one == "local" else "ray", ray_address=args.ray_address,
                              cpus_per_candidate=args.cpus_per_candidate, batch_size=args.batch_size)
    if args.ray_address:
        keep_loopback()  # the two-node cluster on this machine listens on 127.0.0.1 only
    started = time.monotonic()
    summary = run_search(args.subset, args.out, settings)
    wall = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "driver_peak_rss_mb": peak_mb, "summary": summary}, default=str))


def run_child(args, run: str, subset: Path, out: Path, address: str | None = None, cpus: int | None = None) -> dict:
    command = [sys.executable, __file__, "--one", run, "--subset", str(subset), "--out", str(out),
               "--root-epochs", str(args.root_epochs), "--epochs", str(args.epochs), "--repeats", str(args.repeats),
               "--max-rounds", str(args.max_rounds), "--max-candidates", str(args.max_candidates),
               "--max-split", str(args.max_split), "--workers", str(args.workers), "--batch-size", str(args.batch_size),
               "--val-fraction", repr(args.val_fraction)]
    command += ["--ray-address", address] if address else []
    command += ["--cpus-per-candidate", str(cpus)] if cpus else []
    print(f"[{run}] {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=args.timeout, check=True,
                          env=loopback_env())  # both Ray runs bind loopback only
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows_of(run: str, record: dict) -> list[dict]:
    from edgekit.search.report import table_rows

    summary = record["summary"]
    rows = []
    for c, cells in zip(summary["candidates"], table_rows(summary)):
        rows.append({"run": run, "id": c["id"], "step": c["step"], "candidate": cells[2], "params": c["params"],
                     "val_acc_pct": round(100 * c["val_accuracy"], 2), "val_low": round(100 * c["val_low"], 2),
                     "val_high": round(100 * c["val_high"], 2), "gain_vs_control": cells[6], "decision": c["decision"],
                     "seeds": len(c["runs"]), "nodes": " ".join(sorted({r["node"][:8] for r in c["runs"]})),
                     "train_seconds": round(c["train_seconds"], 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "cifar10" / "train")
    parser.add_argument("--work", type=Path, default=Path("/tmp/edgekit-search-ray"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "search_ray")
    parser.add_argument("--runs", default="local,ray,multinode")
    parser.add_argument("--name", default="search_ray", help="results file name under --out")
    parser.add_argument("--train-per-class", type=int, default=200)
    parser.add_argument("--val-per-class", type=int, default=500)  # 5,000 held-out validation images
    parser.add_argument("--root-epochs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-rounds", type=int, default=1)
    parser.add_argument("--max-candidates", type=int, default=2)
    parser.add_argument("--max-split", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--timeout", type=int, default=1800)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--subset", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--val-fraction", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--ray-address", help=argparse.SUPPRESS)
    parser.add_argument("--cpus-per-candidate", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return one_search(args)

    per_class = args.train_per_class + args.val_per_class
    args.val_fraction = args.val_per_class / per_class
    subset = link_subset(args.data, args.work, per_class)
    records, rows = {}, []
    for run in args.runs.split(","):
        out = args.work / f"search-{run}"
        subprocess.run(["rm", "-rf", str(out), str(out.parent / f".{out.name}.candidates")], check=True)
        if run == "multinode":
            # One CPU per node and per candidate: two trainings at a time, one on each node.
            with two_node_cluster(args.work / "ray-logs") as address:
                records[run] = run_child(args, run, subset, out, address=address, cpus=1)
        else:
            records[run] = run_child(args, run, subset, out)
        rows += rows_of(run, records[run])
        print(f"[{run}] {records[run]['wall_s']:.1f} s, driver peak RSS {records[run]['driver_peak_rss_mb']:.0f} MB",
              file=sys.stderr, flush=True)
    summary = {"command": " ".join(sys.argv), "train_images": 10 * args.train_per_class,
               "val_images": 10 * args.val_per_class,
               "runs": {run: {"wall_s": r["wall_s"], "driver_peak_rss_mb": r["driver_peak_rss_mb"],
                              "best": r["summary"]["best"], "settings": r["summary"]["settings"],
                              "candidates": r["summary"]["candidates"]} for run, r in records.items()}}
    if "local" in records and "ray" in records:
        summary["ray_over_local_wall"] = records["ray"]["wall_s"] / records["local"]["wall_s"]
        table = lambda run: [{k: v for k, v in r.items() if k not in ("run", "nodes", "train_seconds")}  # noqa: E731
                             for r in rows if r["run"] == run]
        summary["same_table"] = table("local") == table("ray")
    if "multinode" in records:
        nodes = {n for c in records["multinode"]["summary"]["candidates"] for n in (r["node"] for r in c["runs"])}
        summary["multinode_nodes_used"] = sorted(nodes)
    for run in records:
        for c in summary["runs"][run]["candidates"]:
            c.pop("correct", None)
    write_results(args.out, args.name, summary, rows)


if __name__ == "__main__":
    main()
