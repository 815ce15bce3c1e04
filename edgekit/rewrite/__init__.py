"""Exact ONNX graph rewrites between simplify and quantize, where a runtime's kernels are slow.

Each rewrite is one small module with one onnxscript rewrite rule, registered by name like the
models; ``rewrite_onnx`` applies them one by one and keeps a rewrite only where fp32 parity with the
graph before it holds.
"""

from edgekit.rewrite.registry import (
    ExactRewrite,
    GraphRewrite,
    list_rewrites,
    register_rewrite,
)
from edgekit.rewrite.stage import PARITY_TOLERANCE, rewrite_onnx

__all__ = ["PARITY_TOLERANCE", "ExactRewrite", "GraphRewrite", "list_rewrites", "register_rewrite", "rewrite_onnx"]
