"""``python -m edgekit.train`` / ``torchrun --nproc-per-node N -m edgekit.train ...``."""

from edgekit.train.command import main

main()
