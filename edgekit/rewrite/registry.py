"""The registry of graph rewrites: name -> one onnxscript rule class, in the order they are applied."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from onnxscript.rewriter import RewriteRule, RewriteRuleClassBase

from edgekit.core.errors import EdgekitError

# Modules that register the built-in rewrites, imported on first use (as the model families are).
BUILTIN_MODULES = ("edgekit.rewrite.depthwise_multiplier",)


class ExactRewrite(RewriteRuleClassBase):
    """A rewrite rule that keeps, beside onnxscript's match/no-match, its near misses: nodes that look
    like its pattern but fail a condition it needs to be exact (recorded, never rewritten)."""

    def __init__(self) -> None:
        super().__init__(name=type(self).__name__)
        self.near_misses: list[str] = []

    def make_rule(self) -> RewriteRule:
        """onnxscript's rule, bound to this instance (``RewriteRuleClassBase.rule`` makes its own)."""
        return RewriteRule(self.pattern, self.rewrite, self.check, name=self.name, remove_nodes=self.remove_nodes,
                           graph_pre_visitor=self.setup, graph_post_visitor=self.cleanup, as_function=self.as_function)


@dataclass(frozen=True)
class GraphRewrite:
    name: str
    pattern: str  # what it matches and does, in words (REPORT.md, docs)
    make: Callable[[], ExactRewrite]


_REWRITES: dict[str, GraphRewrite] = {}


def register_rewrite(name: str, *, pattern: str):
    """Class decorator: register an ExactRewrite subclass under ``name``; a second use of a name is refused."""
    def decorate(cls: type[ExactRewrite]) -> type[ExactRewrite]:
        if name in _REWRITES:
            raise EdgekitError(f"graph rewrite {name!r} is registered twice")
        _REWRITES[name] = GraphRewrite(name, pattern, cls)
        return cls
    return decorate


def list_rewrites() -> list[GraphRewrite]:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return list(_REWRITES.values())
