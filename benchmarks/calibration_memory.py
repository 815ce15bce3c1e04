"""Peak memory and wall time of ``edgekit build`` with 300 calibration images (issue 12, part 4).

    .venv/bin/python benchmarks/calibration_memory.py [--models mobilenet_v2,resnet101] [--targets cpu]
        [--calib ../shared/datasets/cifar10/train] [--calib-size 300] [--no-stages] [--out benchmarks/results]

For each model and target, ``python -m edgekit build -m MODEL -t TARGET --calib DIR --calib-size N``
runs in its own process (registry model, random init, input 224; the CIFAR-10 folder is passed as it
is and edgekit resizes). Its peak RSS is the largest sum of RSS over the process and its children,
polled every 50 ms with psutil; the build's own ``ru_maxrss`` (``os.wait4``: its largest single
process) is the cross-check. Then, unless --no-stages, a second process runs the build's stages in order
(load images, export, simplify + parity, calibration, quantize_static, int8-vs-fp32 comparison) and
records each stage's peak RSS, so the peak can be attributed without any hook in edgekit itself.
Writes <out>/calibration_memory.json and .csv.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from _results import write_results  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mobilenet_v2", "resnet101")
POLL_SECONDS = 0.05
MB = 1024 * 1024


def tree_rss(process: psutil.Process) -> int:
    """RSS of ``process`` and all its descendants (bench workers, ORT's child processes), in bytes."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # a child may exit between listing and reading
            pass
    return total


class PeakSampler:
    """Polls the RSS of a process tree on a thread; ``peak`` is the largest seen since ``reset``."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self.peak = 0
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, tree_rss(self._process))
            except psutil.NoSuchProcess:
                return
            self._stop.wait(POLL_SECONDS)

    def reset(self) -> int:
        """Start a new window at the current RSS; returns that RSS."""
        now = tree_rss(self._process)
        self.peak = now
        return now

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure_build(model: str, target: str, calib: str, calib_size: int, work: Path) -> dict:
    command = [sys.executable, "-m", "edgekit", "build", "-m", model, "-t", target, "--calib", calib,
               "--calib-size", str(calib_size), "-o", str(work / f"{model}-{target}"), "--force"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDGEKIT_NO_PROGRESS": "1"}
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with PeakSampler(child.pid) as sampler:
        output = child.stdout.read()
        # wait4 gives this child's own rusage; ru_maxrss (KiB on Linux) is the largest RSS of one
        # process of its tree (not a sum), so it must stay <= the polled tree peak.
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output[-3000:]}")
    children_max = usage.ru_maxrss * 1024
    return {"model": model, "target": target, "calib_size": calib_size, "command": " ".join(command[1:]),
            "wall_s": round(seconds, 1), "peak_rss_mb": round(sampler.peak / MB),
            "ru_maxrss_children_mb": round(children_max / MB)}


def measure_stages(model: str, target: str, calib: str, calib_size: int) -> dict:
    """Run in a fresh process (``--stages``): the build's steps one by one, each stage's peak RSS."""
    result = subprocess.run([sys.executable, __file__, "--stages-of", f"{model}:{target}", "--calib", calib,
                             "--calib-size", str(calib_size)], env={**os.environ, "PYTHONPATH": str(ROOT),
                                                                    "EDGEKIT_NO_PROGRESS": "1"},
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"stage breakdown of {model} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _stages_in_this_process(model: str, target: str, calib: str, calib_size: int) -> dict:
    from dataclasses import replace

    from edgekit.data import find_images
    from edgekit.runtimes.sessions import ort_logits
    from edgekit.builder import export, simplify
    from edgekit.builder.pipeline import PARITY_SAMPLES
    from edgekit.runtimes.compare import compare_logits
    from edgekit.quantize.ort import calibration_ranges, quantize_onnx_static
    from edgekit.builder.source import resolve_model
    from edgekit.targets.profiles import load_target

    stages = {}
    with PeakSampler(os.getpid()) as sampler, tempfile.TemporaryDirectory(prefix="calibmem-") as tmp:
        work = Path(tmp)

        def stage(name, run):
            before = sampler.reset()
            start = time.perf_counter()
            value = run()
            time.sleep(2 * POLL_SECONDS)  # let the sampler see the stage's last allocation
            stages[name] = {"rss_before_mb": round(before / MB), "peak_rss_mb": round(sampler.peak / MB),
                            "seconds": round(time.perf_counter() - start, 1)}
            return value

        source = stage("resolve model", lambda: resolve_model(model))
        images = stage("load images", lambda: find_images(calib).subset(calib_size, seed=0).load(source.preprocessing))
        check = images[:PARITY_SAMPLES]
        stage("export", lambda: export.export_onnx(source.module, check, work / "raw.onnx"))
        fp32 = work / "fp32.onnx"
        stage("simplify", lambda: simplify.simplify_onnx(work / "raw.onnx", fp32))
        stage("parity", lambda: export.check_parity(source.module, fp32, check, tolerance=1e-4, input_source="calib"))
        settings = load_target(target).quantization
        calib_dir = work / "calib"
        calib_dir.mkdir()
        stage("calibration", lambda: calibration_ranges(fp32, images, settings.calibration_method, calib_dir))
        int8 = work / "int8.onnx"
        # quantize_onnx_static = calibration again + quantize_static; its peak minus calibration's is quantize_static's.
        stage("calibration + quantize_static", lambda: quantize_onnx_static(fp32, int8, images, replace(settings)))
        stage("int8 vs fp32 comparison", lambda: compare_logits(ort_logits(fp32, images), ort_logits(int8, images)))
    return {"model": model, "target": target, "calib_size": calib_size, "stages": stages}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib", default=str(ROOT.parent / "shared/datasets/cifar10/train"))
    parser.add_argument("--calib-size", type=int, default=300)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--targets", default="cpu", help="comma-separated; openvino measures NNCF's calibration")
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown (cpu target only)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--tag", default="calibration_memory")
    parser.add_argument("--stages-of", help=argparse.SUPPRESS)  # internal: MODEL:TARGET, run by measure_stages
    args = parser.parse_args()
    if args.stages_of:
        model, target = args.stages_of.split(":")
        print(json.dumps(_stages_in_this_process(model, target, args.calib, args.calib_size)))
        return 0

    runs, rows = [], []
    with tempfile.TemporaryDirectory(prefix="calibmem-") as tmp:
        for model in args.models.split(","):
            for target in args.targets.split(","):
                print(f"building {model} for {target} ...", file=sys.stderr, flush=True)
                run = measure_build(model, target, args.calib, args.calib_size, Path(tmp))
                if not args.no_stages and target == "cpu":
                    run["stages"] = measure_stages(model, target, args.calib, args.calib_size)["stages"]
                runs.append(run)
                rows.append({k: v for k, v in run.items() if k != "stages"})
                print(f"{model:14} {target:9} peak {run['peak_rss_mb']:6} MB (largest process "
                      f"{run['ru_maxrss_children_mb']} MB)  wall {run['wall_s']:6.1f} s", file=sys.stderr, flush=True)
    print("\n| model | target | images | peak RSS MB (tree) | ru_maxrss MB | wall s |\n|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['target']} | {row['calib_size']} | {row['peak_rss_mb']} | "
              f"{row['ru_maxrss_children_mb']} | {row['wall_s']} |")
    for run in runs:
        if "stages" in run:
            print(f"\n{run['model']} stages: | stage | RSS before MB | peak RSS MB | s |")
            for name, stage in run["stages"].items():
                print(f"| {name} | {stage['rss_before_mb']} | {stage['peak_rss_mb']} | {stage['seconds']} |")
    summary = {"machine": {"cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 1024 ** 3)},
               "calib": args.calib, "poll_seconds": POLL_SECONDS, "runs": runs}
    write_results(Path(args.out), args.tag, summary, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
