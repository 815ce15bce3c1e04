"""edgekit: from a PyTorch CNN to a fast, small, verified int8 model on an edge device.

The Python API mirrors the CLI: each command calls one function re-exported here.
Heavy dependencies (torch, onnxruntime, openvino) are imported inside the functions that
need them, so `import edgekit` and `edgekit --help` stay fast.
"""

__version__ = "0.1.0"

from edgekit.core.errors import EdgekitError  # noqa: E402

__all__ = ["EdgekitError", "__version__", "build", "bench"]


def build(*args, **kwargs):
    """See :func:`edgekit.builder.pipeline.build_artifact`."""
    from edgekit.builder.pipeline import build_artifact

    return build_artifact(*args, **kwargs)


def bench(*args, **kwargs):
    """See :func:`edgekit.benchmark.run.bench_artifact`."""
    from edgekit.benchmark.run import bench_artifact

    return bench_artifact(*args, **kwargs)
