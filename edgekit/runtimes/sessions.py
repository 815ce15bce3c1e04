"""Thin helpers to run a model file in ONNX Runtime or OpenVINO (used by the pipeline and the checks)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgekit.core.errors import EdgekitError


def ort_session(path: Path, *, threads: int = 0, basic_optimizations_only: bool = False,
                kernels: str = "exact", config: dict | None = None, profile_prefix: str | None = None,
                optimized_model_path: str | None = None):
    """``basic_optimizations_only``: constant folding and node elimination, no kernel fusion (a lone
    Q/DQ pair then stays fake-quantization in float instead of becoming an int8 kernel).
    ``profile_prefix``: ORT's per-node profiler on, its JSON named so; ``optimized_model_path``: the
    graph ORT runs after its optimisations is saved there.
    ``kernels``: the x86 int8 kernels the model asks for (board_runner.X86_INT8_KERNELS); ``config``
    replaces this CPU's session config entries (board_runner.ort_session_options)."""
    import onnxruntime as ort

    from edgekit.runtimes.board_runner import (
        RunnerError,
        ort_session_options,
        session_config_here,
    )

    try:
        entries = session_config_here(kernels) if config is None else dict(config)  # exact int8 on x86 without VNNI
    except RunnerError as error:
        raise EdgekitError(str(error)) from None
    options = ort_session_options(ort, threads, config=entries)
    if basic_optimizations_only:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    if profile_prefix:
        options.enable_profiling, options.profile_file_prefix = True, profile_prefix
    if optimized_model_path:
        options.optimized_model_filepath = optimized_model_path
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
        raise EdgekitError(f"ONNX Runtime cannot load {Path(path).name}{_with_config(entries)}: "
                           f"{explain_ort_error(path, error)}") from None


def _with_config(entries: dict) -> str:
    """The session options a load failed with, and why edgekit set them (the option is often the cause)."""
    from edgekit.runtimes.board_runner import EXACT_INT8_OPTIONS, int8_saturates_here

    if not entries:
        return ""
    named = ", ".join(f"{key}={value}" for key, value in entries.items())
    if entries.items() >= EXACT_INT8_OPTIONS.items():
        why = ("this CPU has no AVX-512 VNNI, so edgekit asks for exact int8 kernels" if int8_saturates_here()
               else "the exact int8 kernels that x86 CPUs without AVX-512 VNNI need")
        return f" with {named} ({why})"
    return f" with {named}"


STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}


def explain_ort_error(path: Path, error: Exception) -> str:
    """ORT's load errors carry C++ file names and signatures; keep the part a user can act on."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
        custom = sorted({f"{n.domain}::{n.op_type}" for n in graph.node if n.domain not in STANDARD_DOMAINS})
    except Exception:  # the file itself may be what is broken; fall back to ORT's words
        custom = []
    if custom:
        return f"unsupported op(s) {', '.join(custom)} (custom domain, no kernel in ONNX Runtime)"
    text = " ".join(str(error).split())
    missing = re.search(r"Could not find an implementation for (\S+)", text)
    if missing:
        return f"unsupported op {missing.group(1)}"
    if "Attempt to replace the existing tensor" in text:
        return ("a quantized weight reaches several nodes through one DequantizeLinear, and ORT's exact-kernel "
                "rewrite adds its u8 copy twice (an ONNX Runtime bug: benchmarks/ort_x64quantprecision_repro.py); "
                "edgekit build gives each node its own")
    text = text.split("failed:", 1)[-1]
    # Drop "/onnxruntime_src/...cc:256 onnxruntime::Model::Model(...) " prefixes.
    text = re.sub(r"^\s*\S+\.(?:cc|h|cpp):\d+ (?:[\w:~<>]+\(.*?\) )?", "", text)
    return text[:300]


def ort_logits(path: Path, images: np.ndarray, *, batch_size: int = 8, threads: int = 0,
               basic_optimizations_only: bool = False, kernels: str = "exact") -> np.ndarray:
    # ORT's arena keeps the largest run's activations for the session's life: batch 32 at 224 px
    # cost resnet101 ~600 MB more than batch 8, for no measurable speed on a few CPU cores.
    session = ort_session(path, threads=threads, basic_optimizations_only=basic_optimizations_only, kernels=kernels)
    name = session.get_inputs()[0].name
    static_batch = session.get_inputs()[0].shape[0]
    if isinstance(static_batch, int):
        batch_size = static_batch
    outputs = [session.run(None, {name: images[s:s + batch_size]})[0] for s in range(0, len(images), batch_size)]
    return np.concatenate(outputs)


def openvino_compiled(path: Path, *, threads: int = 0, precision: str | None = "f32", batch: int = 1):
    import openvino as ov

    from edgekit.runtimes.board_runner import compile_openvino

    return compile_openvino(ov, path, threads=threads, precision=precision, batch=batch)


def openvino_logits(path: Path, images: np.ndarray, *, precision: str | None = "f32") -> np.ndarray:
    compiled = openvino_compiled(path, precision=precision, batch=1)
    request = compiled.create_infer_request()
    return np.concatenate([request.infer({0: images[i:i + 1]})[0].copy() for i in range(len(images))])
