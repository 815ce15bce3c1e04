"""The command line: commands (every `edgekit` command), support (option types, error handling), config
(--config files). ``edgekit.cli.commands:main`` is the console script; ``python -m edgekit`` calls it too."""

from edgekit.cli.commands import cli, main

__all__ = ["cli", "main"]
