"""Running aarch64 code on this machine under qemu user-mode emulation, for correctness checks."""

from edgekit.runtimes.emulation.arm64 import (
    INFER_DRIVER,
    Arm64Python,
    check_arch,
    ensure_arm64_python,
)

__all__ = ["INFER_DRIVER", "Arm64Python", "check_arch", "ensure_arm64_python"]
