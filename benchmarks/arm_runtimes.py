"""ORT int8 vs ExecuTorch/XNNPACK and LiteRT on an emulated Cortex-A72 (issue 23 part 3): estimated cycles and top-1.

For the trained references (benchmarks/results/train_ref/{mobilenet_v2_cifar,keffnet_b0_16ch_cycle2}/best.pt,
the runs benchmarks/results/int8_plans_a72 built) this builds seven variants per model, all int8 ones
calibrated on the same CIFAR-10 training images of the run's own split (300 by default) and all judged
on the same held-out images (2,000 in the README's table; the run's own validation part, picked as
benchmarks/_cifar_split.py picks them):

- ORT fp32 (edgekit's ONNX export) and ORT int8 as targets/rpi4.toml ships it (U8S8 QDQ, per-channel, minmax);
- ExecuTorch 1.5.1 fp32 and int8: torch.export (-> pt2e with XNNPACKQuantizer: symmetric int8, per-channel
  weights, static activations) -> to_edge_transform_and_lower(XnnpackPartitioner) -> .pte;
- LiteRT 2.3.0 fp32 (litert-torch 0.10.0) and int8 (ai-edge-quantizer static_wi8_ai8 on that .tflite), the
  int8 file run twice: with LiteRT's default XNNPACK delegate and with its built-in kernels.

Cost: edgekit's A72 estimate (edgekit.runtimes.emulation.a72_cost): instructions counted per inference by
the insn_classes.c plugin under ``qemu-aarch64 -cpu cortex-a72`` between the same two lseek marks, weighted
by the same issue model, 1 thread. ORT runs in edgekit's cached arm64 Python (a72_driver.py); LiteRT in the
same rootfs's python3.11 with a sibling site (arm_runtimes/litert_a72_driver.py); ExecuTorch as a C++
runner (arm_runtimes/et_a72_runner.cpp) against the aarch64 executorch wheel's libraries. The sibling
sites live in ~/.cache/edgekit/arm64-study-{executorch,litert}; edgekit's own cache is only read.
Accuracy: top-1 on the host (each runtime's x86 kernels), not under emulation.

    bash benchmarks/arm_runtimes/setup.sh /tmp/etvenv       # once
    PYTHONPATH=. nice -n 5 /tmp/etvenv/bin/python benchmarks/arm_runtimes.py --runs 3 --calib 300 --eval 2000

(~12-15 min on 2 shared cores). Results: benchmarks/results/arm_runtimes/arm_runtimes.{json,csv}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import write_results

MODELS = ("mobilenet_v2_cifar", "keffnet_b0_16ch_cycle2")  # train_ref runs: the papers' references
TRAIN_REF = ROOT / "benchmarks" / "results" / "train_ref"
DATA = Path(os.environ.get("EDGEKIT_CIFAR", "/work/shared/datasets/cifar10/train"))
BAR = 1.2  # issue 23: a runtime is added if it beats ORT int8 by >= 1.2x estimated cycles at equal accuracy


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def study_root() -> Path:
    from edgekit.runtimes.emulation.arm64 import cache_root

    return cache_root() / "arm64-study-executorch"


# ---- data ----------------------------------------------------------------------------------------

def split_arrays(checkpoint, calib: int, evaluation: int):
    """(calibration images, held-out images, their labels), the run's own split as _cifar_split picks it."""
    from edgekit.data import find_images
    from edgekit.data.folders import split_per_class
    from edgekit.data.preprocessing import Preprocessing

    run = checkpoint.run
    preprocessing = Preprocessing.from_dict(checkpoint.preprocessing)
    images = find_images(DATA)
    train, val = split_per_class(images, val_fraction=run["data"]["val_fraction"], seed=run["seed"])
    chosen_calib, chosen_eval = train.subset(calib, seed=1), val.subset(evaluation, seed=2)
    return (chosen_calib.load(preprocessing), chosen_eval.load(preprocessing),
            np.asarray(chosen_eval.labels, dtype=np.int64))


# ---- building ------------------------------------------------------------------------------------

def build_ort(module, calib: np.ndarray, folder: Path) -> tuple[Path, Path, dict]:
    from edgekit.builder.export import export_onnx
    from edgekit.quantize.ort import quantize_onnx_static
    from edgekit.targets.profiles import load_target

    fp32, int8 = folder / "ort_fp32.onnx", folder / "ort_int8.onnx"
    export_onnx(module, calib[:1], fp32)
    record = quantize_onnx_static(fp32, int8, calib, load_target("rpi4").quantization)
    return fp32, int8, record


def build_executorch(module, calib: np.ndarray, folder: Path) -> tuple[Path, Path, dict]:
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackPartitioner,
    )
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    example = (torch.from_numpy(np.ascontiguousarray(calib[:1])),)
    fp32, int8 = folder / "et_fp32.pte", folder / "et_int8.pte"

    def lower(program, path: Path) -> dict:
        edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
        nodes = [n for n in edge.exported_program().graph.nodes if n.op == "call_function"]
        delegated = sum("executorch_call_delegate" in str(n.target) for n in nodes)
        leftover = sorted({str(n.target) for n in nodes if "executorch_call_delegate" not in str(n.target)
                           and "getitem" not in str(n.target)})
        path.write_bytes(edge.to_executorch().buffer)
        return {"delegate_calls": delegated, "ops_outside_xnnpack": leftover}

    with torch.no_grad():
        fp32_record = lower(torch.export.export(module, example), fp32)
        config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False)
        prepared = prepare_pt2e(torch.export.export(module, example).module(), XNNPACKQuantizer().set_global(config))
        for image in calib:
            prepared(torch.from_numpy(np.ascontiguousarray(image[None])))
        converted = convert_pt2e(prepared)
        int8_record = lower(torch.export.export(converted, example), int8)
    return fp32, int8, {"quantizer": "XNNPACKQuantizer symmetric int8, per-channel weights, static activations "
                                     "(pt2e, torchao 0.18)", "calibration_images": len(calib),
                        "fp32_lowering": fp32_record, "int8_lowering": int8_record}


def build_litert(module, calib: np.ndarray, folder: Path) -> tuple[Path, Path, dict]:
    """fp32: litert-torch's converter. int8: ai-edge-quantizer's static_wi8_ai8 recipe on that .tflite
    (litert-torch's own pt2e route failed on kEffNet: "AssertionError: Attempting to convert non-NHWC
    compatible node to NHWC: dequantize_per_tensor_7")."""
    import litert_torch
    import torch
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    example = (torch.from_numpy(np.ascontiguousarray(calib[:1])),)
    fp32, int8 = folder / "litert_fp32.tflite", folder / "litert_int8.tflite"
    with torch.no_grad():
        litert_torch.convert(module, example).export(str(fp32))
    signatures = Interpreter(model_path=str(fp32)).get_signature_list()
    key = next(iter(signatures))
    name = signatures[key]["inputs"][0]
    runner = quantizer.Quantizer(str(fp32))
    runner.load_quantization_recipe(recipe.static_wi8_ai8())
    ranges = runner.calibrate({key: [{name: np.ascontiguousarray(image[None])} for image in calib]}, num_threads=1)
    runner.quantize(ranges).export_model(str(int8), overwrite=True)
    return fp32, int8, {"converter": "litert-torch 0.10.0", "quantizer": "ai-edge-quantizer 0.10 static_wi8_ai8 "
                        "(min-max, int8 weights and activations, int8 input/output)",
                        "calibration_images": len(calib)}


# ---- accuracy (host) -----------------------------------------------------------------------------

def predict_ort(path: Path, images: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: images[i:i + 100]})[0] for i in range(0, len(images), 100)])


def predict_executorch(path: Path, images: np.ndarray) -> np.ndarray:
    import torch
    from executorch.runtime import Runtime

    method = Runtime.get().load_program(str(path)).load_method("forward")
    return np.concatenate([method.execute([torch.from_numpy(np.ascontiguousarray(image[None]))])[0].numpy()
                           for image in images])


def litert_interpreter(path: Path, builtin: bool):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin else OpResolverType.AUTO
    interpreter = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    return interpreter


def predict_litert(path: Path, images: np.ndarray, builtin: bool = False) -> np.ndarray:
    """As litert_a72_driver.py feeds it: NHWC if the model wants it, int8 input quantized, output dequantized."""
    interpreter = litert_interpreter(path, builtin)
    detail, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in images:
        image = image[None]
        if tuple(detail["shape"]) != image.shape:
            image = image.transpose(0, 2, 3, 1)
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            image = np.clip(np.round(image / scale) + zero, info.min, info.max)
        interpreter.set_tensor(detail["index"], np.ascontiguousarray(image.astype(detail["dtype"])))
        interpreter.invoke()
        values = interpreter.get_tensor(output["index"]).astype(np.float32)
        if output["dtype"] != np.float32:
            scale, zero = output["quantization"]
            values = (values - zero) * scale
        results.append(values.reshape(1, -1))
    return np.concatenate(results)


# ---- cost (emulated Cortex-A72) ------------------------------------------------------------------

def estimate_executorch(pte: Path, sample: np.ndarray, runs: int, timeout_s: float = 600) -> dict:
    """The A72 estimate for one .pte, the same plugin, marks and issue model as estimate_a72_cycles."""
    from edgekit.core.errors import EdgekitError
    from edgekit.runtimes.emulation.a72_cost import (
        ensure_plugin,
        per_inference,
        plugin_qemu,
        read_marks,
        summarize,
    )
    from edgekit.runtimes.emulation.arm64 import QEMU_CPU, describe_failure

    stamp = study_root() / "stamp.json"
    if not stamp.is_file():
        raise EdgekitError(f"no ExecuTorch study site at {stamp.parent}: run bash benchmarks/arm_runtimes/setup.sh")
    site = json.loads(stamp.read_text())
    plugin = ensure_plugin()
    qemu, version = plugin_qemu()
    with tempfile.TemporaryDirectory(prefix="edgekit-a72-et-") as folder:
        inputs, counts = Path(folder) / "inputs.f32", Path(folder) / "counts.txt"
        np.ascontiguousarray(sample[:1], dtype=np.float32).tofile(inputs)
        argv = ["timeout", "-k", "10", str(int(timeout_s)), "prlimit", "--core=0", "--", qemu, "-plugin",
                f"{plugin},out={counts}", site["runner"], str(pte.resolve()), str(inputs), str(runs), "1"]
        env = {"PATH": os.environ.get("PATH", ""), "QEMU_CPU": QEMU_CPU, "QEMU_LD_PREFIX": site["rootfs"]}
        started = time.monotonic()
        done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, cwd=folder)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise EdgekitError(describe_failure(f"A72 cost run of {pte.name}", done.returncode, done.stderr, timeout_s))
        per_kind = per_inference(read_marks(counts.read_text() if counts.is_file() else ""), runs)
    by_class, uops, cycles, bottleneck = summarize(per_kind)
    return {"runtime": "executorch 1.5.1 (XNNPACK delegate), C++ runner", "runs": runs, "threads": 1,
            "instructions_per_inference": sum(per_kind.values()), "counts_by_class": by_class, "pipe_uops": uops,
            "estimated_cycles": cycles, "bottleneck": bottleneck, "qemu_version": version, "cpu": QEMU_CPU,
            "emulation_seconds": seconds, "runner_output": done.stdout.strip().splitlines()[:1],
            "counts_by_kind": dict(sorted(per_kind.items(), key=lambda kv: -kv[1]))}


def estimate_litert(path: Path, sample: np.ndarray, runs: int, builtin: bool = False, timeout_s: float = 600) -> dict:
    """The A72 estimate for one .tflite: litert_a72_driver.py in the emulated Python with a sibling site
    (~/.cache/edgekit/arm64-study-litert/site: ai-edge-litert 2.3.0 + numpy), same plugin and marks."""
    from edgekit.core.errors import EdgekitError
    from edgekit.runtimes.emulation.a72_cost import (
        ensure_plugin,
        per_inference,
        plugin_qemu,
        read_marks,
        summarize,
    )
    from edgekit.runtimes.emulation.arm64 import (
        QEMU_CPU,
        describe_failure,
        ensure_arm64_python,
    )

    site = study_root().parent / "arm64-study-litert" / "site"
    if not (site / "ai_edge_litert").is_dir():
        raise EdgekitError(f"no LiteRT study site at {site}: run bash benchmarks/arm_runtimes/setup.sh")
    python = ensure_arm64_python()
    plugin = ensure_plugin()
    qemu, version = plugin_qemu()
    driver = Path(__file__).resolve().parent / "arm_runtimes" / "litert_a72_driver.py"
    with tempfile.TemporaryDirectory(prefix="edgekit-a72-litert-") as folder:
        inputs, counts = Path(folder) / "inputs.npy", Path(folder) / "counts.txt"
        np.save(inputs, np.ascontiguousarray(sample[:1], dtype=np.float32))
        argv = ["timeout", "-k", "10", str(int(timeout_s)), "prlimit", "--core=0", "--", qemu, "-plugin",
                f"{plugin},out={counts}", str(python.python), str(driver), str(path.resolve()), str(inputs),
                "--runs", str(runs), "--threads", "1", *(["--builtin"] if builtin else [])]
        env = {"PATH": os.environ.get("PATH", ""), "QEMU_CPU": QEMU_CPU, "QEMU_LD_PREFIX": str(python.rootfs),
               "PYTHONPATH": str(site), "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
        started = time.monotonic()
        done = subprocess.run(argv, check=False, env=env, capture_output=True, text=True, cwd=folder)
        seconds = time.monotonic() - started
        if done.returncode != 0:
            raise EdgekitError(describe_failure(f"A72 cost run of {path.name}", done.returncode, done.stderr, timeout_s))
        per_kind = per_inference(read_marks(counts.read_text() if counts.is_file() else ""), runs)
    by_class, uops, cycles, bottleneck = summarize(per_kind)
    kernels = "LiteRT built-in kernels (no default delegate)" if builtin else "XNNPACK delegate (LiteRT's default)"
    return {"runtime": f"ai-edge-litert 2.3.0, {kernels}, litert_a72_driver.py", "runs": runs, "threads": 1,
            "instructions_per_inference": sum(per_kind.values()), "counts_by_class": by_class, "pipe_uops": uops,
            "estimated_cycles": cycles, "bottleneck": bottleneck, "qemu_version": version, "cpu": QEMU_CPU,
            "emulation_seconds": seconds, "runner_output": done.stdout.strip().splitlines()[:1],
            "counts_by_kind": dict(sorted(per_kind.items(), key=lambda kv: -kv[1]))}


def estimate_ort(path: Path, sample: np.ndarray, runs: int) -> dict:
    from edgekit.runtimes.emulation.a72_cost import estimate_a72_cycles

    record = estimate_a72_cycles(path, (1, *sample.shape[1:]), images=sample[:1], runs=runs).to_dict()
    record["runtime"] = f"onnxruntime {record['onnxruntime']} (CPU EP, MLAS), a72_driver.py"
    return record


# ---- main ----------------------------------------------------------------------------------------

def multiply_accumulates(module, shape) -> int:
    """Conv and Linear MACs of one inference: the work that no runtime can skip."""
    import torch

    total = [0]

    def count(layer, inputs, output):
        if isinstance(layer, torch.nn.Conv2d):
            total[0] += output.numel() * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, torch.nn.Linear):
            total[0] += output.numel() * layer.in_features

    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        module(torch.zeros(shape))
    for hook in hooks:
        hook.remove()
    return total[0]


def top_kinds(per_kind: dict, count: int = 4) -> str:
    return ", ".join(f"{kind} {value / 1e6:.2f}M" for kind, value in list(per_kind.items())[:count])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--runs", type=int, default=3, help="inferences between the two marks")
    parser.add_argument("--calib", type=int, default=300)
    parser.add_argument("--eval", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "arm_runtimes")
    parser.add_argument("--keep", type=Path, default=None, help="keep the built files in this folder")
    args = parser.parse_args()
    import torch

    from edgekit.models.checkpoint import module_from_checkpoint, read_checkpoint
    from edgekit.runtimes.emulation.a72_cost import METHOD, a72_estimate_unavailable

    problem = a72_estimate_unavailable()
    if problem:
        raise SystemExit(problem)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    summary: dict = {"method": METHOD + "; ExecuTorch runs as a C++ runner (no Python interpreter in the counted "
                     "region either way: both count only between the marks)",
                     "accuracy": "top-1 on the host (x86_64 kernels of each runtime), held-out split of the run",
                     "bar": BAR, "models": {}}
    rows = []
    work = Path(tempfile.mkdtemp(prefix="edgekit-armrt-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    for name in args.models.split(","):
        checkpoint = read_checkpoint(TRAIN_REF / name / "best.pt")
        module = module_from_checkpoint(checkpoint)
        say(f"{name}: loading {args.calib} calibration + {args.eval} held-out images")
        calib, images, labels = split_arrays(checkpoint, args.calib, args.eval)
        folder = work / name
        folder.mkdir(exist_ok=True)
        started = time.monotonic()
        ort_fp32, ort_int8, ort_record = build_ort(module, calib, folder)
        say(f"{name}: ORT built ({time.monotonic() - started:.0f} s)")
        started = time.monotonic()
        et_fp32, et_int8, et_record = build_executorch(module, calib, folder)
        say(f"{name}: ExecuTorch built ({time.monotonic() - started:.0f} s): {et_record['int8_lowering']}")
        started = time.monotonic()
        lt_fp32, lt_int8, lt_record = build_litert(module, calib, folder)
        say(f"{name}: LiteRT built ({time.monotonic() - started:.0f} s)")
        files = {("onnxruntime", "fp32"): ort_fp32, ("onnxruntime", "int8"): ort_int8,
                 ("executorch-xnnpack", "fp32"): et_fp32, ("executorch-xnnpack", "int8"): et_int8,
                 ("litert-xnnpack", "fp32"): lt_fp32, ("litert-xnnpack", "int8"): lt_int8,
                 ("litert-builtin", "int8"): lt_int8}
        predictors = {"onnxruntime": predict_ort, "executorch-xnnpack": predict_executorch,
                      "litert-xnnpack": predict_litert,
                      "litert-builtin": lambda path, images: predict_litert(path, images, builtin=True)}
        estimators = {"onnxruntime": estimate_ort, "executorch-xnnpack": estimate_executorch,
                      "litert-xnnpack": estimate_litert,
                      "litert-builtin": lambda path, sample, runs: estimate_litert(path, sample, runs, builtin=True)}
        with torch.no_grad():
            reference = module(torch.from_numpy(images)).numpy().argmax(1)
        macs = multiply_accumulates(module, (1, *calib.shape[1:]))
        # The issue model's floors: fmla.4s = 4 MACs in 2 µops on F0/F1 (4 MACs a cycle); smull/smlal .8h =
        # 8 MACs in 1 µop on F0 only (8 MACs a cycle), ARMv8.0's best int8 multiply without sdot.
        entry: dict = {"macs": macs, "fp32_floor_cycles": macs / 4, "int8_smull_floor_cycles": macs / 8,
                       "ort_quantization": ort_record, "executorch_build": et_record, "litert_build": lt_record,
                       "pytorch_top1": float((reference == labels).mean()), "held_out_images": len(labels),
                       "runs": {}}
        sample = calib[:1]
        for (runtime, precision), path in files.items():
            predicted = predictors[runtime](path, images).argmax(1)
            started = time.monotonic()
            cost = estimators[runtime](path, sample, args.runs)
            say(f"{name} {runtime} {precision}: {cost['instructions_per_inference'] / 1e6:.1f} M instructions, "
                f"{cost['estimated_cycles'] / 1e6:.2f} M est. cycles ({cost['bottleneck']}); "
                f"top-1 {(predicted == labels).mean():.4f}; {time.monotonic() - started:.0f} s")
            entry["runs"][f"{runtime}/{precision}"] = {"file_bytes": path.stat().st_size,
                                                       "top1": float((predicted == labels).mean()),
                                                       "agreement_with_pytorch": float((predicted == reference).mean()),
                                                       "a72": cost}
        base = entry["runs"]["onnxruntime/fp32"]["a72"]["estimated_cycles"]
        ort8 = entry["runs"]["onnxruntime/int8"]["a72"]["estimated_cycles"]
        for key, run in entry["runs"].items():
            runtime, precision = key.split("/")
            cost, classes = run["a72"], run["a72"]["counts_by_class"]
            rows.append({"model": name, "runtime": runtime, "precision": precision,
                         "instructions_M": round(cost["instructions_per_inference"] / 1e6, 3),
                         "cycles_M": round(cost["estimated_cycles"] / 1e6, 3), "bottleneck": cost["bottleneck"],
                         "ort_fp32_over_this": round(base / cost["estimated_cycles"], 3),
                         "ort_int8_over_this": round(ort8 / cost["estimated_cycles"], 3),
                         "fp_fma_M": round(classes.get("fp_fma", 0) / 1e6, 3),
                         "simd_int_mul_long_M": round(classes.get("simd_int_mul_long", 0) / 1e6, 3),
                         "simd_int_mul_M": round(classes.get("simd_int_mul", 0) / 1e6, 3),
                         "simd_int_accumulate_shift_M": round(classes.get("simd_int_accumulate_shift", 0) / 1e6, 3),
                         "loads_M": round((classes.get("load", 0) + classes.get("load_q", 0)
                                           + classes.get("load_vector", 0)) / 1e6, 3),
                         "simd_int_dot": classes.get("simd_int_dot", 0),
                         "macs_M": round(macs / 1e6, 3),
                         "multiply_floor_cycles_M": round(macs / (8 if precision == "int8" else 4) / 1e6, 3),
                         "top_kinds": top_kinds(cost["counts_by_kind"]),
                         "top1": round(run["top1"], 4), "agreement_with_pytorch": round(run["agreement_with_pytorch"], 4),
                         "file_kb": round(run["file_bytes"] / 1024, 1),
                         "emulation_s": round(cost.get("emulation_seconds", 0.0), 1)})
        entry["int8_vs_ort_int8"] = {}
        for runtime in ("executorch-xnnpack", "litert-xnnpack", "litert-builtin"):
            run = entry["runs"][f"{runtime}/int8"]
            entry["int8_vs_ort_int8"][runtime] = {
                "ort_int8_cycles_over_this": ort8 / run["a72"]["estimated_cycles"],
                "top1_minus_ort_int8": run["top1"] - entry["runs"]["onnxruntime/int8"]["top1"],
                "clears_bar": ort8 / run["a72"]["estimated_cycles"] >= BAR}
            say(f"{name}: ORT int8 / {runtime} int8 est. cycles = "
                f"{entry['int8_vs_ort_int8'][runtime]['ort_int8_cycles_over_this']:.2f}x, top-1 delta "
                f"{entry['int8_vs_ort_int8'][runtime]['top1_minus_ort_int8']:+.4f}")
        summary["models"][name] = entry
    write_results(args.out, "arm_runtimes", summary, rows)


if __name__ == "__main__":
    main()
