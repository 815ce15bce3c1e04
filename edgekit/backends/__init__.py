"""Runtime backends, one module per inference runtime (edgekit.backends.base says what each does).

Found, not listed: every module here but ``base`` is the backend of the runtime it is named after
and defines ``BACKEND``. A target profile's ``runtime`` names one (``Target.backend()``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from edgekit.runtimes.names import backend_runtimes as runtimes

if TYPE_CHECKING:  # the package itself imports no backend: listing them must stay free
    from edgekit.backends.base import RuntimeBackend


def backend_class(runtime: str) -> type[RuntimeBackend]:
    if runtime not in runtimes():  # never import a module named by a manifest or profile unchecked
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(runtimes())}")
    backend = importlib.import_module(f"{__name__}.{runtime}").BACKEND
    if backend.runtime != runtime:
        raise TypeError(f"{__name__}.{runtime} defines the backend of {backend.runtime!r}")
    return backend


__all__ = ["backend_class", "runtimes"]
