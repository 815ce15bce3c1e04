"""Where edgekit writes: checked before any work, published atomically, never over a user's files.

Rules every command that writes follows (build, prune, search, train, bench/verify reports):
- An output may not be, or contain, one of the run's inputs or the current folder, and may not
  lie inside an input folder (the calibration or training tree would then hold edgekit's files).
- An existing output is replaced (``--force``) only when edgekit wrote it: a folder whose
  ``manifest.json`` has the expected schema and lists every file in it, or a report file edgekit
  recognises as its own. Anything else is refused before work starts, and nothing is deleted.
- A folder is assembled in a hidden staging folder beside its destination and published with one
  rename that cannot replace (``renameat2(RENAME_NOREPLACE)``), or, for ``--force``, an atomic
  exchange with the old folder, re-checked after the swap. Of two runs racing for one output,
  exactly one wins; the other fails with one line.
- Staging and scratch folders carry their process id and start time in their names, so the next
  run removes those of dead processes (a SIGKILLed build) and never those of live ones.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.core.processes import is_dead, process_tag

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


# ---- who wrote a folder -------------------------------------------------------------------------

def read_json_object(path: Path, *, what: str) -> dict:
    """A JSON object from a regular file (not a symlink, not huge); one-line errors otherwise."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise EdgekitError(f"{what}: {path} does not exist") from None
    if not path.is_file() or path.is_symlink():
        raise EdgekitError(f"{what}: {path} is not a regular file")
    if info.st_size > MAX_MANIFEST_BYTES:
        raise EdgekitError(f"{what}: {path} is {info.st_size:,} bytes, more than any edgekit manifest")
    try:
        record = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as error:
        raise EdgekitError(f"{what}: {path} is not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise EdgekitError(f"{what}: {path} holds a JSON {type(record).__name__}, expected an object")
    return record


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def files_in(folder: Path) -> list[str]:
    """Relative POSIX names of every non-directory entry under ``folder`` (symlinks included)."""
    found = []
    for parent, directories, names in os.walk(folder, onerror=_raise):
        for name in names + [d for d in directories if (Path(parent) / d).is_symlink()]:
            found.append((Path(parent) / name).relative_to(folder).as_posix())
    return sorted(found)


def _raise(error: OSError) -> None:
    raise error


def foreign_files_reason(folder: Path, schemas: tuple[str, ...]) -> str | None:
    """Why ``folder`` is not an edgekit folder of one of ``schemas`` (None when it is one).

    Its manifest must carry the schema and list every file present, so a file a user added later
    (notes, a second model) makes the folder theirs and --force refuses to replace it.
    """
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file() or manifest_path.is_symlink():
        return f"it has no {MANIFEST}, so edgekit did not write it"
    try:
        manifest = read_json_object(manifest_path, what="manifest")
    except EdgekitError as error:
        return str(error)
    if manifest.get("schema") not in schemas:
        return f"its {MANIFEST} has schema {manifest.get('schema')!r}, not {' or '.join(schemas)}"
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return f"its {MANIFEST} lists no files"
    try:
        present = files_in(folder)
    except OSError as error:
        return f"it cannot be listed ({error.strerror}: {error.filename})"
    unlisted = [name for name in present if name != MANIFEST and name not in listed]
    if unlisted:
        shown = ", ".join(unlisted[:3]) + (f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else "")
        return f"it holds files its {MANIFEST} does not list ({shown})"
    return None


def owned_by(*schemas: str) -> Callable[[Path], str | None]:
    return lambda folder: foreign_files_reason(folder, schemas)


# ---- checks before any work ---------------------------------------------------------------------

def is_within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or lies below it (both resolved by the caller)."""
    return path == folder or folder in path.parents


def check_not_overlapping(out: Path, inputs: dict[str, str | Path | None], *, option: str) -> None:
    """Refuse an output that is, contains, or lies inside an input (or contains the current folder)."""
    out = out.resolve()
    cwd = Path.cwd().resolve()
    if is_within(cwd, out):
        raise EdgekitError(f"{option} {out} is {'the current folder' if out == cwd else 'above the current folder'}; "
                           "choose a new folder for edgekit's output")
    for name, value in inputs.items():
        if value is None:
            continue
        source = Path(value).resolve()
        if is_within(source, out):
            raise EdgekitError(f"{option} {out} {'is' if source == out else 'contains'} the {name} {source}; "
                               "edgekit would replace its own input")
        if source.is_dir() and is_within(out, source):
            raise EdgekitError(f"{option} {out} lies inside the {name} {source}; choose a folder outside it")


def check_writable_location(path: Path, *, option: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder this process can write into."""
    ancestor = path.parent
    while not ancestor.exists() and not ancestor.is_symlink():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise EdgekitError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise EdgekitError(f"{option} {path}: cannot write into {ancestor} (read-only or no permission)")


def check_folder_location(out: str | Path, *, option: str, inputs: dict[str, str | Path | None] | None = None) -> Path:
    """Where a folder may go: not over an input, not a file, under a writable folder. Returns it resolved."""
    path = Path(out).expanduser().resolve()
    check_not_overlapping(path, inputs or {}, option=option)
    if path.exists() and not path.is_dir():
        raise EdgekitError(f"{option} {path} is a file, not a folder; edgekit will not replace it")
    check_writable_location(path, option=option)
    return path


@dataclass(frozen=True)
class PlannedFolder:
    """An output folder checked before work: where, and what was there (to detect races)."""

    path: Path
    option: str
    found: tuple | None  # identity of the folder there at planning time (None: absent or empty)
    owner: Callable[[Path], str | None]


def plan_output_folder(out: str | Path, *, force: bool, owner: Callable[[Path], str | None],
                       inputs: dict[str, str | Path | None] | None = None, option: str = "--out") -> PlannedFolder:
    """Check an output folder before work starts; raise a one-line error for every reason it cannot be."""
    path = check_folder_location(out, option=option, inputs=inputs)
    found = None
    if path.is_dir() and _has_entries(path):
        if not force:
            raise EdgekitError(f"output folder {path} already exists (--force replaces it if edgekit wrote it)")
        reason = owner(path)
        if reason:
            raise EdgekitError(f"--force replaces only a folder edgekit wrote; {path} is kept: {reason}")
        found = _identity(path)
    elif path.is_dir():
        found = _identity(path)  # an empty folder: taken over, nothing to lose
    return PlannedFolder(path, option, found, owner)


def _has_entries(path: Path) -> bool:
    with os.scandir(path) as entries:
        return any(True for _ in entries)


def _identity(path: Path) -> tuple | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_dev, info.st_ino, info.st_mtime_ns


# ---- atomic publication ---------------------------------------------------------------------------

_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<tag>\d+-\d+)\.[^.]+\.(?:partial|old)$")
_TEMP_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<tag>\d+-\d+)\.[^.]*\.tmp$")
_SCRATCH = re.compile(r"^edgekit-(?P<name>[\w-]+)\.(?P<tag>\d+-\d+)\.[^.]+$")


def _sweep(folder: Path, pattern: re.Pattern, names: tuple[str, ...], *, folders: bool) -> None:
    """Remove entries of ``folder`` named by ``pattern`` for one of ``names`` whose process is gone.
    Only this user's own regular entries, never through a symlink."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        match = pattern.match(entry.name)
        if not match or match["name"] not in names or entry.is_symlink():
            continue
        if (entry.is_dir() if folders else entry.is_file()) and entry.lstat().st_uid == os.getuid() \
                and is_dead(match["tag"]):
            if folders:
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def sweep_leftovers(parent: Path, name: str) -> None:
    """Remove staging folders of ``name`` left in ``parent`` by processes that no longer run."""
    _sweep(parent, _LEFTOVER, (name,), folders=True)


@contextlib.contextmanager
def atomic_folder(plan: PlannedFolder, *, shareable: bool = True) -> Iterator[Path]:
    """Yield a staging folder beside ``plan.path``; publish it there only if the block succeeds.

    ``shareable`` opens mkdtemp's owner-only permissions to the umask (artifacts are meant to be
    copied); leave it off for trees whose modes matter.
    """
    destination = plan.path
    sweep_leftovers(destination.parent, destination.name)
    created = _make_parents(destination.parent, option=plan.option)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.{process_tag()}.", suffix=".partial",
                                    dir=destination.parent))
    published = False
    try:
        try:
            yield staging
        except Exception as error:
            if not isinstance(error, EdgekitError) and disk_full(destination.parent):
                raise EdgekitError(f"no space left on the device holding {destination}: nothing was written") from error
            raise
        if shareable:
            _make_readable(staging)
        _publish(staging, plan)
        published = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not published:
            for folder in reversed(created):
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only if still empty


def _make_parents(parent: Path, *, option: str) -> list[Path]:
    missing = []
    folder = parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir()
        except FileExistsError:
            pass
        except OSError as error:
            raise EdgekitError(f"{option}: cannot create {folder} ({error.strerror})") from None
    return list(reversed(missing))


def disk_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """flock on the parent folder itself: serialises edgekit's publications there, leaves no file."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _publish(staging: Path, plan: PlannedFolder) -> None:
    destination = plan.path
    changed = EdgekitError(f"{destination} changed while this run was working (another edgekit run writing "
                           "there?); it was left as it is and nothing was published")
    with _folder_lock(destination.parent):
        if _identity(destination) != plan.found:
            raise changed
        if plan.found is None:
            if not _rename(staging, destination, _RENAME_NOREPLACE):
                raise changed
            return
        # Replace: swap atomically, then make sure what came out is what was checked.
        if not _rename(staging, destination, _RENAME_EXCHANGE):
            raise changed
        swapped_out = staging
        if _identity(swapped_out) != plan.found or (_has_entries(swapped_out) and plan.owner(swapped_out)):
            _rename(swapped_out, destination, _RENAME_EXCHANGE)
            raise changed
        shutil.rmtree(swapped_out)


def _renameat2():
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


def _rename(source: Path, destination: Path, flags: int) -> bool:
    """renameat2 with ``flags``; False when the destination is in the way (NOREPLACE) or gone (EXCHANGE)."""
    function = _renameat2()
    if function is not None:
        if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), flags) == 0:
            return True
        code = ctypes.get_errno()
        if code in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOENT):
            return False
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(destination))
    return _rename_portably(source, destination, flags)


def _rename_portably(source: Path, destination: Path, flags: int) -> bool:
    """For file systems without renameat2 flags (some network mounts): check, then rename, under the
    folder lock held by the caller. A non-edgekit process could still slip in between."""
    if flags == _RENAME_NOREPLACE:
        if destination.exists() or destination.is_symlink():
            return False
        os.rename(source, destination)
        return True
    aside = destination.with_name(f".{destination.name}.{process_tag()}.swap.old")
    os.rename(destination, aside)
    os.rename(source, destination)
    os.rename(aside, source)
    return True


def _make_readable(folder: Path) -> None:
    """mkdtemp/mkstemp create owner-only entries; an artifact is meant to be copied and shared."""
    umask = _umask()
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


def sweep_temp_files(folder: Path, names: tuple[str, ...]) -> None:
    """Remove ``.NAME.PID-START.*.tmp`` files (edgekit's atomic writes) of processes that are gone."""
    _sweep(folder, _TEMP_FILE, names, folders=False)


def temp_file_beside(path: Path) -> str:
    """A temp file next to ``path`` whose name says which process made it (see sweep_temp_files)."""
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.{process_tag()}.", suffix=".tmp", dir=path.parent)
    os.close(descriptor)
    return name


@contextlib.contextmanager
def exclusive_use(folder: Path, *, what: str) -> Iterator[None]:
    """Hold an flock on ``folder`` for a run's lifetime: a second run into it fails at once."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgekitError(f"{folder} is in use by another {what}; wait for it or choose another folder") from None
        yield
    finally:
        os.close(descriptor)


# ---- scratch folders and output files ------------------------------------------------------------

@contextlib.contextmanager
def scratch_folder(purpose: str) -> Iterator[Path]:
    """A private temp folder that a SIGKILL cannot leave behind for long: the next run sweeps it."""
    root = Path(tempfile.gettempdir())
    _sweep(root, _SCRATCH, (purpose,), folders=True)
    folder = Path(tempfile.mkdtemp(prefix=f"edgekit-{purpose}.{process_tag()}.", dir=root))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    replace: bool  # an existing file edgekit recognised as its own


def has_schema(schema: str) -> Callable[[Path], bool]:
    """Recognises a JSON report edgekit wrote (it carries ``schema``), so it may be replaced."""
    def recognise(path: Path) -> bool:
        try:
            return read_json_object(path, what="report").get("schema") == schema
        except EdgekitError:
            return False

    return recognise


def plan_output_file(path: str | Path, *, option: str, recognise: Callable[[Path], bool],
                     forbidden: dict[str, Path] | None = None) -> PlannedFile:
    """Check a report path before work: not inside an artifact or input, not over a user's file."""
    given = Path(path).expanduser().absolute()
    resolved = given.parent.resolve() / given.name  # the last part unresolved: a symlink there is refused
    for name, folder in (forbidden or {}).items():
        folder = Path(folder).resolve()
        if is_within(resolved, folder) or (folder.is_file() and resolved == folder):
            raise EdgekitError(f"{option} {resolved} lies inside the {name} {folder}; write it elsewhere")
    if not resolved.parent.is_dir():
        raise EdgekitError(f"{option} {resolved}: folder {resolved.parent} does not exist")
    if not os.access(resolved.parent, os.W_OK | os.X_OK):
        raise EdgekitError(f"{option} {resolved}: cannot write into {resolved.parent} (read-only or no permission)")
    if resolved.is_dir():
        raise EdgekitError(f"{option} {resolved} is a folder; give a file name")
    exists = resolved.exists() or resolved.is_symlink()
    if exists and (resolved.is_symlink() or not recognise(resolved)):
        raise EdgekitError(f"{option} {resolved} exists and edgekit did not write it; it is kept (choose another name)")
    return PlannedFile(resolved, exists)


def write_planned_file(plan: PlannedFile, content: str | bytes) -> None:
    """Write via a temp file; publish without replacing unless the plan found edgekit's own file."""
    descriptor, temp = tempfile.mkstemp(prefix=f".{plan.path.name}.", suffix=".tmp", dir=plan.path.parent)
    try:
        with os.fdopen(descriptor, "wb" if isinstance(content, bytes) else "w") as handle:
            handle.write(content)
        os.chmod(temp, 0o666 & ~_umask())
        if plan.replace:
            os.replace(temp, plan.path)
        elif not _rename(Path(temp), plan.path, _RENAME_NOREPLACE):
            raise EdgekitError(f"{plan.path} appeared while this run was working; it was kept")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask
