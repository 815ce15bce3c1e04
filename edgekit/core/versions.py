"""The versions of edgekit and its libraries installed here: recorded in every manifest and bench report,
so a number can be traced to the code that produced it."""

from __future__ import annotations

import platform
from importlib import metadata

BUILD_PACKAGES = ("edgekit", "torch", "torchvision", "onnx", "onnxruntime", "onnxsim", "openvino", "nncf", "numpy")
BENCH_PACKAGES = ("edgekit", "onnxruntime", "openvino", "torch")


def installed_versions(packages: tuple[str, ...] = BUILD_PACKAGES) -> dict[str, str | None]:
    """``{package: version or None when not installed, ..., "python": version}``."""
    found = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found["python"] = platform.python_version()
    return found
