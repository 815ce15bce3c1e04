"""The runtimes edgekit knows: ``pytorch`` (the model an artifact was built from) and one per
backend module in edgekit/backends/.

The backends are found by listing that package, not importing it: this module sits below them in
the import graph (the manifest checks runtime names with it), and a listing costs nothing.
"""

from __future__ import annotations

import importlib.util
import pkgutil

REFERENCE_RUNTIME = "pytorch"
NOT_BACKENDS = {"base"}


def backend_runtimes() -> tuple[str, ...]:
    """The runtimes a target profile may name: edgekit/backends/<runtime>.py."""
    spec = importlib.util.find_spec("edgekit.backends")
    return tuple(sorted(m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)
                        if m.name not in NOT_BACKENDS and not m.name.startswith("_")))


def known_runtimes() -> tuple[str, ...]:
    """What a manifest's models may name."""
    return (REFERENCE_RUNTIME, *backend_runtimes())
