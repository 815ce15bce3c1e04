"""Tests that need system tools (sshd, qemu) skip without them, except in CI where they must run."""

from __future__ import annotations

import os

import pytest


def require_system_tool(available: bool, message: str) -> None:
    if available:
        return
    if os.environ.get("EDGEKIT_REQUIRE_SYSTEM_TOOLS") == "1":
        pytest.fail(message)  # CI installs them: a skip there would hide a broken set-up
    pytest.skip(message)
