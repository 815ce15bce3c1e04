"""Which process made a file: a pid tagged with its start time, and whether that process is gone.

A tag names the process that wrote a leftover (``.name.PID-START.xxxx.partial``) so that a later run
removes only what a dead edgekit process left, never a live one's, even after the pid is reused.
"""

from __future__ import annotations

import os
from pathlib import Path


def process_tag(pid: int | None = None) -> str:
    """``PID-STARTTIME``: the start time tells a reused pid from the process that made a folder."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_start_time(pid) or 0}"


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after "pid (comm)", or None when it cannot be read."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _made_up_by_qemu(fields: list[str]) -> bool:
    # The kernel writes a state letter; qemu user mode makes the file up for the process it runs ("0").
    return not fields[0].isalpha()


def runs_under_qemu() -> bool:
    """Whether this process runs under qemu user-mode emulation (it makes up /proc/self/stat)."""
    fields = _stat_fields("self")
    return fields is not None and _made_up_by_qemu(fields)


def _start_time(pid: int) -> int | None:
    fields = _stat_fields(pid)
    # Under qemu the made-up file carries qemu's own start time: other processes read the kernel's,
    # so a tag with it would look like a reused pid.
    if fields is None or _made_up_by_qemu(fields):
        return None
    try:
        return int(fields[19])  # field 22 of stat(5), counted after "pid (comm)"
    except (IndexError, ValueError):
        return None


def is_dead(tag: str) -> bool:
    pid_text, _, start_text = tag.partition("-")
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    started = _start_time(pid)
    return started is not None and start_text != "0" and str(started) != start_text
