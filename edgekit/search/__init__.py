"""The two-step architecture search of the layer-replication paper (``edgekit search``)."""

from edgekit.search.two_step import SearchSettings, run_search

__all__ = ["SearchSettings", "run_search"]
