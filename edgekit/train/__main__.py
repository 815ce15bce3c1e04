"""``python -m edgekit.train`` / ``torchrun --nproc-per-node N -m edgekit.train ...``: ``edgekit train``
under the module name torchrun's ``-m`` needs.

The command is defined once, in edgekit/cli/commands.py. This module replaces itself with that command
(``exec`` keeps the process id, so torchrun and a signal still see one process) rather than
importing the command line from inside the package it drives, which would make edgekit.train and
edgekit.cli.commands import each other.
"""

import os
import sys

os.execv(sys.executable, [sys.executable, "-m", "edgekit", "train", *sys.argv[1:]])
