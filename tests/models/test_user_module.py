"""-m path/to/file.py:function and -m package.module:function: built through the registry path,
rebuildable from the spec and the source's sha256, and every bad spec is one line naming it."""

import sys

import pytest
import torch

from edgekit.core.errors import EdgekitError
from edgekit.core.hashing import sha256_file
from edgekit.models import build_model, default_config, get_spec

NET = '''from torch import nn


def build(*, num_classes, in_channels):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))


def returns_nothing(*, num_classes, in_channels):
    return None


def positional_only(size):
    return size


def raises(*, num_classes, in_channels):
    raise ValueError("the user's own mistake")


WIDTH = 8
'''


def write_net(folder, name="my_net.py", text=NET):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_a_file_function_builds_and_records_its_source_hash(tmp_path):
    path = write_net(tmp_path)
    spec = f"{path}:build"
    config = default_config(spec, num_classes=4, in_channels=1, input_size=16)
    assert config.options == {"source_sha256": sha256_file(path)} and config.name == spec
    with torch.no_grad():
        assert build_model(config).eval()(torch.randn(2, 1, 16, 16)).shape == (2, 4)


def test_a_relative_path_and_a_package_module_resolve_against_the_current_folder(tmp_path, monkeypatch):
    write_net(tmp_path / "nets", "zoo.py")
    (tmp_path / "nets" / "__init__.py").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    for spec in ("nets/zoo.py:build", "nets.zoo:build"):
        assert isinstance(build_model(default_config(spec, num_classes=3, input_size=8)), torch.nn.Module)
    assert str(tmp_path) not in sys.path  # the import put the folder on sys.path only while it ran
    monkeypatch.delitem(sys.modules, "nets.zoo")
    monkeypatch.delitem(sys.modules, "nets")


def test_a_changed_source_file_is_refused_on_rebuild(tmp_path):
    path = write_net(tmp_path)
    config = default_config(f"{path}:build", num_classes=2, input_size=8)
    path.write_text(NET.replace("8, 3, padding=1", "16, 3, padding=1").replace("Linear(8", "Linear(16"))
    with pytest.raises(EdgekitError, match=r"my_net.py changed since this model was saved \(sha256 [0-9a-f]{12}\.\.\. then"):
        build_model(config)


@pytest.mark.parametrize("spec,fragment", [
    ("{dir}/missing.py:build", "missing.py does not exist"),
    ("{dir}/my_net.py:nope", "my_net.py has no function 'nope' (it defines build, positional_only, raises, returns_nothing)"),
    ("{dir}/my_net.py:WIDTH", "WIDTH is not a function (it is of type int)"),
    ("{dir}/my_net.py:positional_only", "must take keyword arguments num_classes and in_channels; it lacks num_classes, in_channels"),
    ("{dir}/broken.py:build", "importing {dir}/broken.py failed (SyntaxError"),
    ("{dir}/imports_missing.py:build", "importing {dir}/imports_missing.py failed (ModuleNotFoundError: No module named 'no_such_package')"),
    ("no_such_package.nets:build", "cannot import no_such_package.nets (ModuleNotFoundError"),
    ("{dir}/my_net.py:not a name", "is not path/to/file.py:function or package.module:function"),
])
def test_a_bad_spec_is_one_line_naming_it(tmp_path, spec, fragment):
    write_net(tmp_path)
    write_net(tmp_path, "broken.py", "def build(:\n")
    write_net(tmp_path, "imports_missing.py", "import no_such_package\n")
    spec = spec.format(dir=tmp_path)
    with pytest.raises(EdgekitError) as caught:
        get_spec(spec)
    message = caught.value.one_line()
    assert message.startswith(f"model {spec!r}") and fragment.format(dir=tmp_path) in message, message


@pytest.mark.parametrize("function,fragment", [
    ("returns_nothing", "returns_nothing(num_classes=10, in_channels=3) returned a NoneType, not a torch.nn.Module"),
    ("raises", "raises(num_classes=10, in_channels=3) raised ValueError (ValueError: the user's own mistake)"),
])
def test_a_function_that_gives_no_module_is_one_line(tmp_path, function, fragment):
    spec = f"{write_net(tmp_path)}:{function}"
    with pytest.raises(EdgekitError) as caught:
        build_model(default_config(spec, num_classes=10, input_size=8))
    assert fragment in caught.value.one_line()


def test_the_input_size_is_required(tmp_path):
    with pytest.raises(EdgekitError, match="has no default input size: pass --input-size"):
        default_config(f"{write_net(tmp_path)}:build")
