"""An emulated Raspberry Pi 4 (aarch64 Cortex-A72): qemu user-mode plus a cached arm64 Python.

The cache holds a Debian arm64 root file system (unpacked, never booted) and aarch64 wheels of the
host's own onnxruntime, OpenVINO and numpy versions, so emulated and native results come from the
same releases. The wheels are chosen for the root file system's own glibc, as pip on the board would.
It is built once (10-60 s) in a temp folder and renamed into place only after a smoke test passes:
a folder with a matching stamp.json is complete by construction.

Results from here are for correctness only: emulated timings say nothing about a real board.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.core.outputs import atomic_folder, plan_output_folder
from edgekit.core.progress import say
from edgekit.runtimes.board_runner import RUNNER_PYTHON

QEMU_CPU = "cortex-a72"
SUITE = "bookworm"
ROOTFS_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libstdc++6")
OLDEST_MANYLINUX = (2, 17)  # manylinux2014: older wheels are not offered for aarch64
RECIPE = 3  # bump when the set-up below changes, so that older caches are rebuilt
SETUP_TIMEOUT_S = 900
BOARD_RUNNER = Path(__file__).resolve().parents[1] / "board_runner.py"
INFER_DRIVER = Path(__file__).resolve().parent / "infer_driver.py"  # verify's: one model over an .npy file
ARCHES = {"arm64": "arm64", "aarch64": "arm64"}
# Host variables the emulated process may see; anything else (LD_PRELOAD, PYTHONHOME, a venv's
# PYTHONPATH) belongs to the x86 side and would confuse qemu or the aarch64 interpreter.
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TERM", "OMP_NUM_THREADS")


def check_arch(arch: str) -> str:
    try:
        return ARCHES[arch.lower()]
    except KeyError:
        raise EdgekitError(f"unknown --arch {arch!r}: only arm64 (aarch64, emulated as a Raspberry Pi 4) "
                           "is supported") from None


def cache_root() -> Path:
    """$EDGEKIT_CACHE_DIR, else $XDG_CACHE_HOME/edgekit, else ~/.cache/edgekit."""
    if os.environ.get("EDGEKIT_CACHE_DIR"):
        return Path(os.environ["EDGEKIT_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgekit"


def host_versions() -> dict[str, str]:
    """The host's runtimes (OpenVINO only where installed) and numpy: the emulated side gets the same."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"onnxruntime": version("onnxruntime"), "numpy": version("numpy")}
    try:
        versions["openvino"] = version("openvino")
    except PackageNotFoundError:
        pass
    return versions


def manylinux_platforms(glibc: str, machine: str = "aarch64") -> list[str]:
    """pip's ``--platform`` values for a system with this glibc ("2.36"), newest first.

    pip does not widen an explicit ``manylinux_2_X`` to older tags as it does for the running
    system, so one fixed tag misses wheels on either side of it (openvino's aarch64 wheel is
    manylinux_2_35, onnxruntime's manylinux_2_28): every compatible tag is listed.
    """
    try:
        major, minor = (int(part) for part in glibc.split("."))
    except ValueError:
        raise EdgekitError(f"cannot read the emulated system's glibc version from {glibc!r}") from None
    if (major, minor) < OLDEST_MANYLINUX:
        raise EdgekitError(f"the emulated system's glibc {glibc} is older than manylinux2014 (2.17): no wheels fit it")
    tags = [f"manylinux_{major}_{m}_{machine}" for m in range(minor, OLDEST_MANYLINUX[1] - 1, -1)]
    return [*tags, f"manylinux2014_{machine}"]


def pi4_cpuinfo(cores: int = 4) -> str:
    """What a Raspberry Pi 4 (BCM2711, 4x Cortex-A72 r0p3) shows in /proc/cpuinfo."""
    block = ("processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"
             "CPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\n"
             "CPU revision\t: 3\n\n")
    tail = "Hardware\t: BCM2835\nRevision\t: c03114\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n"
    return "".join(block.format(i=i) for i in range(cores)) + tail


def find_qemu() -> str:
    for name in ("qemu-aarch64-static", "qemu-aarch64"):
        path = shutil.which(name)
        if path:
            return path
    raise EdgekitError("qemu-aarch64 is not installed (needed to emulate arm64): "
                       "apt-get install qemu-user-static")


@dataclass(frozen=True)
class Arm64Python:
    """The cached aarch64 python3.11 with onnxruntime and numpy, run under qemu as a Cortex-A72."""

    root: Path
    qemu: str

    @property
    def rootfs(self) -> Path:
        return self.root / "rootfs"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def python(self) -> Path:
        return self.rootfs / "usr" / "bin" / "python3.11"

    def glibc(self) -> str:
        """The root file system's glibc version, asked of its own python3 ("2.36")."""
        argv, env = self.command("-c", "import os; print(os.confstr('CS_GNU_LIBC_VERSION'))", timeout_s=120)
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        words = done.stdout.split()
        if done.returncode != 0:
            raise EdgekitError(describe_failure("glibc query", done.returncode, done.stderr, 120))
        if len(words) != 2 or words[0] != "glibc":
            raise EdgekitError(f"the emulated python3 gives {done.stdout.strip()[:80]!r} as its C library, expected glibc")
        return words[1]

    def stamp(self) -> dict:
        return json.loads((self.root / "stamp.json").read_text())

    def command(self, *args: str, timeout_s: float = 600) -> tuple[list[str], dict[str, str]]:
        """argv and environment that run ``python3 ARGS`` emulated; host paths work as they are.

        QEMU_LD_PREFIX makes qemu look up every absolute path in the rootfs first and fall back to
        the host's, so rootfs/proc/cpuinfo (a Pi 4's) shadows the x86 one, which aarch64
        onnxruntime cannot parse (it segfaults at import). This needs no mount namespace or
        privileges.

        Nothing here depends on binfmt_misc: the emulated interpreter's sys.executable is an aarch64
        binary that the kernel cannot exec without it, so EDGEKIT_RUNNER_PYTHON tells the board
        runner to start its workers as ``qemu <python>`` too. qemu passes the guest's environment
        (QEMU_CPU, QEMU_LD_PREFIX, PYTHONPATH, ...) to the qemu it execs, so they run alike.
        """
        # timeout: a crashed qemu can hang. prlimit: qemu writes core files of the emulated process
        # into the working directory, which is often the user's artifact folder.
        argv = ["timeout", "-k", "10", str(int(timeout_s)), "prlimit", "--core=0", "--",
                self.qemu, str(self.python), *args]
        env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
        env.update(QEMU_CPU=QEMU_CPU, QEMU_LD_PREFIX=str(self.rootfs), PYTHONPATH=str(self.site),
                   PYTHONNOUSERSITE="1", PYTHONDONTWRITEBYTECODE="1",  # the cache stays as set up
                   **{RUNNER_PYTHON: json.dumps([os.path.abspath(self.qemu), str(self.python)])})
        return argv, env

    def runner_command(self, *args: str, timeout_s: float = 600) -> tuple[list[str], dict[str, str]]:
        """``board_runner.py ARGS`` under emulation (see edgekit/runtimes/board_runner.py for its commands)."""
        return self.command(str(BOARD_RUNNER), *args, timeout_s=timeout_s)

    def run_runner(self, *args: str, timeout_s: float = 600, what: str = "board runner") -> str:
        """Run the board runner emulated; return its stdout or raise a one-line error."""
        return self.run_script(BOARD_RUNNER, *args, timeout_s=timeout_s, what=what)

    def run_script(self, script: Path, *args: str, timeout_s: float = 600, what: str) -> str:
        """Run one of edgekit's self-contained scripts emulated; return its stdout or raise a one-line error."""
        argv, env = self.command(str(script), *args, timeout_s=timeout_s)
        with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
            try:
                stdout, stderr = child.communicate()
            except BaseException:  # Ctrl-C, SIGTERM: timeout(1) passes SIGTERM on, SIGKILL would orphan qemu
                child.terminate()
                child.wait()
                raise
        if child.returncode != 0:
            raise EdgekitError(describe_failure(what, child.returncode, stderr, timeout_s))
        return stdout


def describe_failure(what: str, code: int, stderr: str, timeout_s: float) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    tail = lines[-1][:300] if lines else "no error output"
    if code == 124:
        return f"emulated {what} timed out after {timeout_s:.0f} s (qemu-aarch64 {QEMU_CPU})"
    if code < 0 or code > 128:  # killed by a signal: timeout(1) reports 128 + signal
        number = -code if code < 0 else code - 128
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"emulated {what} crashed ({name}) under qemu-aarch64 {QEMU_CPU}: {tail}"
    return f"emulated {what} failed with exit code {code}: {tail}"


def ensure_arm64_python(*, rebuild: bool = False) -> Arm64Python:
    """The cached emulated Python, set up first if absent, stale or ``rebuild``."""
    qemu = find_qemu()
    versions = host_versions()
    root = cache_root() / f"arm64-py311-ort{versions['onnxruntime']}-numpy{versions['numpy']}"
    if not rebuild and _is_complete(root, versions):
        return Arm64Python(root, qemu)
    if shutil.which("mmdebstrap") is None:
        raise EdgekitError("mmdebstrap is not installed (needed once to create the arm64 root file system): "
                           "apt-get install mmdebstrap")
    root.parent.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        if not rebuild and _is_complete(root, versions):  # another process set it up meanwhile
            return Arm64Python(root, qemu)
        # An interrupted set-up left only a staging folder, which atomic_folder sweeps (its process is gone).
        plan = plan_output_folder(root, force=True, owner=_cache_owner, option="arm64 cache")
        with atomic_folder(plan, shareable=False) as staging:
            say(f"setting up emulated arm64 Python (one-time, under a minute on a good network) in {root}")
            _set_up(Arm64Python(staging, qemu), versions)
    return Arm64Python(root, qemu)


def _cache_owner(root: Path) -> str | None:
    """An older or damaged cache may be replaced; a folder without edgekit's stamp is not ours."""
    if (root / "stamp.json").is_file() and not (root / "stamp.json").is_symlink():
        return None
    return "it has no stamp.json, so edgekit did not set it up (remove it, or set EDGEKIT_CACHE_DIR)"


def _is_complete(root: Path, versions: dict[str, str]) -> bool:
    try:
        stamp = json.loads((root / "stamp.json").read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("recipe") == RECIPE and stamp.get("versions") == versions


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root.parent / f".{root.name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _set_up(target: Arm64Python, versions: dict[str, str]) -> None:
    started = time.monotonic()
    # fakechroot rather than mmdebstrap's unprivileged default (unshare): that one leaves files owned
    # by sub-uids, which the user could not delete from the cache.
    mode = "root" if os.geteuid() == 0 else "fakechroot"
    _step(1, f"Debian {SUITE} arm64 root file system with python3.11 (mmdebstrap, ~75 MB)",
          ["mmdebstrap", "--quiet", f"--mode={mode}", "--arch=arm64", "--variant=extract",
           f"--include={','.join(ROOTFS_PACKAGES)}", SUITE, str(target.rootfs)],
          "mmdebstrap could not create the arm64 root file system"
          + ("" if mode == "root" else " (as non-root it needs the fakechroot and fakeroot packages)"))
    # The host's /dev must serve the emulated process: qemu would prefer these (empty files in
    # fakechroot mode) to the real /dev/null and /dev/urandom.
    for entry in (target.rootfs / "dev").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (target.rootfs / "proc").mkdir(exist_ok=True)
    (target.rootfs / "proc" / "cpuinfo").write_text(pi4_cpuinfo())
    glibc = target.glibc()
    platforms = manylinux_platforms(glibc)
    pins = [f"{name}=={version}" for name, version in versions.items()]
    _step(2, f"aarch64 wheels {' '.join(pins)} for glibc {glibc} (pip, ~160 MB)",
          [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
           "--target", str(target.site), *(f"--platform={tag}" for tag in platforms), "--only-binary=:all:",
           "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", *pins],
          f"pip cannot fetch aarch64 wheels of {' '.join(pins)} (offline, or none for glibc {glibc})")
    say(f"arm64 set-up 3/3: checking that {', '.join(versions)} import on an emulated {QEMU_CPU}")
    info = json.loads(target.run_runner("info", timeout_s=300, what="python3 smoke test").splitlines()[-1])
    info.pop("cpuinfo", None)
    found = {name: info.get(name) for name in versions}
    if found != versions or info.get("arch") != "aarch64":
        raise EdgekitError(f"the emulated python3 reports {info.get('arch')} with {found}, expected aarch64 "
                           f"with {versions}")
    stamp = {"recipe": RECIPE, "versions": versions, "suite": SUITE, "packages": list(ROOTFS_PACKAGES),
             "glibc": glibc, "wheel_platforms": [platforms[0], platforms[-1]], "qemu_cpu": QEMU_CPU, "board": info,
             "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    (target.root / "stamp.json").write_text(json.dumps(stamp, indent=2) + "\n")
    say(f"arm64 set-up done in {time.monotonic() - started:.0f} s (reused from now on)")


def _step(number: int, title: str, argv: list[str], failure: str) -> None:
    say(f"arm64 set-up {number}/3: {title}")
    _run(argv, failure)


def _run(argv: list[str], failure: str) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=SETUP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"{failure}: no result after {SETUP_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise EdgekitError(f"{failure}: {lines[-1][:300] if lines else f'exit code {done.returncode}'}")
