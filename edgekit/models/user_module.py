"""Your own network: ``-m path/to/my_net.py:build`` or ``-m mypackage.nets:build``.

The function is called with keyword arguments ``num_classes`` and ``in_channels`` and must return a
``torch.nn.Module``. The spec string is the model's name in checkpoints and manifests, and the
sha256 of the source file is a builder option (``source_sha256``), so a rebuild (bench's PyTorch
reference, ``--weights`` of a run) refuses a file that changed since. A relative path is resolved
against the current folder, as Python resolves ``python my_net.py``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from edgekit.core.errors import EdgekitError
from edgekit.core.hashing import sha256_file
from edgekit.models._registry import ModelSpec, register_resolver

ARGUMENTS = ("num_classes", "in_channels")
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_]\w*$")


@dataclass(frozen=True)
class ModuleSpec:
    text: str  # as the user wrote it: the model's name
    location: str  # the file path or the dotted module name
    function: str

    @property
    def is_file(self) -> bool:
        return self.location.endswith(".py")


def claims(name: str) -> bool:
    # Asked after the torchvision resolver, so "torchvision:..." never gets here.
    return ":" in name


def parse(text: str) -> ModuleSpec:
    location, _, function = text.rpartition(":")
    spec = ModuleSpec(text, location, function)
    if not _IDENTIFIER.match(function) or not (spec.is_file or _DOTTED.match(location)):
        raise EdgekitError(f"model {text!r} is not path/to/file.py:function or package.module:function")
    return spec


def resolve(text: str) -> ModelSpec:
    spec = parse(text)
    module, source = _import(spec)
    function = getattr(module, spec.function, None)
    if function is None:
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        raise EdgekitError(f"model {text!r}: {spec.location} has no function {spec.function!r}"
                           + (f" (it defines {', '.join(defined)})" if defined else ""))
    if not callable(function):
        raise EdgekitError(f"model {text!r}: {spec.function} is not a function (it is of type {type(function).__name__})")
    _check_signature(text, function)
    digest = sha256_file(source) if source is not None else None
    return ModelSpec(name=text, builder=_builder(text, function, source, digest), input_size=None,
                     family="user module", description=f"{spec.function} from {source or spec.location}",
                     default_options={"source_sha256": digest} if digest else {})


def _check_signature(text: str, function) -> None:
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # some C callables have no signature: the call will tell
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return
    keywords = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = [name for name in ARGUMENTS if name not in keywords]
    if missing:
        raise EdgekitError(f"model {text!r}: the function must take keyword arguments num_classes and "
                           f"in_channels; it lacks {', '.join(missing)}")


def _builder(text: str, function, source: Path | None, digest: str | None):
    def build(*, num_classes: int, in_channels: int = 3, source_sha256: str | None = None):
        from torch import nn

        if source_sha256 is not None and source_sha256 != digest:
            raise EdgekitError(f"model {text!r}: {source} changed since this model was saved (sha256 "
                               f"{source_sha256[:12]}... then, {str(digest)[:12]}... now)")
        call = f"{function.__name__}(num_classes={num_classes}, in_channels={in_channels})"
        try:
            model = function(num_classes=num_classes, in_channels=in_channels)
        except Exception as error:  # the user's code: any exception is theirs to read, with its cause
            raise EdgekitError(f"model {text!r}: {call} raised {type(error).__name__}") from error
        if not isinstance(model, nn.Module):
            raise EdgekitError(f"model {text!r}: {call} returned a {type(model).__name__}, not a torch.nn.Module")
        return model

    return build


def _import(spec: ModuleSpec):
    """(module, its source file or None)."""
    if spec.is_file:
        path = Path(spec.location)
        if not path.is_file():
            raise EdgekitError(f"model {spec.text!r}: {path} does not exist" if not path.exists()
                               else f"model {spec.text!r}: {path} is not a file")
        return _import_file(spec, path.resolve()), path.resolve()
    with _on_path(Path.cwd()):  # as `python -m` would; a console script's sys.path[0] is its bin folder
        try:
            module = importlib.import_module(spec.location)
        except Exception as error:  # the user's module: SyntaxError, ImportError, whatever it raises
            raise EdgekitError(f"model {spec.text!r}: cannot import {spec.location}") from error
    source = getattr(module, "__file__", None)
    return module, Path(source) if source and source.endswith(".py") else None


def _import_file(spec: ModuleSpec, path: Path):
    # One module per file content: importing the same file twice reuses it, an edited file is new.
    name = f"edgekit_user_model_{sha256_file(path)[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it runs
    with _on_path(path.parent):  # its sibling files import as they do under `python my_net.py`
        try:
            loader_spec.loader.exec_module(module)
        except Exception as error:  # the user's file: SyntaxError, ImportError, whatever it raises
            del sys.modules[name]
            raise EdgekitError(f"model {spec.text!r}: importing {spec.location} failed") from error
    return module


@contextmanager
def _on_path(folder: Path):
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


register_resolver(claims, resolve)
