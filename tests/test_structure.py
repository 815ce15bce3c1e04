"""The package's shape: modules live in rooms by concept (edgekit/X/), no import cycles between modules or
rooms (in-function imports included), one training engine, no class name defined twice, no file a
newcomer cannot read in one sitting."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgekit"
MAX_LINES = 500
LOOSE_MODULES = {"__init__", "__main__", "demo"}  # the only modules outside a room


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _imported(name: str, path: Path, node: ast.AST, modules: dict[str, Path]) -> list[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            parts = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([base] if base else []))
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    found = []
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.append(target)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):  # ast.walk: imports inside functions count too
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(_imported(name, path, node, modules))
    return graph


def _is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(set(graph) | {n for targets in graph.values() for n in targets}):
        if node not in index:
            visit(node)
    return components


def _room(module: str) -> str:
    """The room a module lives in (edgekit.quantize.plan.planner -> edgekit.quantize); loose modules are their own."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_module_import_cycle():
    graph = _import_graph()
    # A package importing its own sub-module lazily (edgekit.build -> edgekit.builder.pipeline) is not a cycle.
    pruned = {a: {b for b in targets if not _is_ancestor(a, b) and not _is_ancestor(b, a)} for a, targets in graph.items()}
    assert _cycles(pruned) == []


def test_no_package_import_cycle():
    rooms: dict[str, set[str]] = defaultdict(set)
    for source, targets in _import_graph().items():
        for target in targets:
            if _room(source) != _room(target) and "edgekit" not in (source, target):
                rooms[_room(source)].add(_room(target))
    assert _cycles(rooms) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_class_name_defined_twice():
    defined = defaultdict(list)
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                defined[node.name].append(name)
    assert {cls: where for cls, where in defined.items() if len(where) > 1} == {}


# Public top-level names that several modules define on purpose: entry points, the model-source
# protocol (models/torchvision_zoo.py and models/user_module.py both answer claims/resolve), and the
# stand-alone board runner's own `bench` command (it imports nothing from edgekit).
SHARED_FUNCTION_NAMES = {"main", "claims", "resolve", "bench"}


def test_no_public_function_name_defined_twice():
    defined = defaultdict(list)
    for name, path in _modules().items():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                defined[node.name].append(name)
    assert {f: where for f, where in defined.items() if len(where) > 1 and f not in SHARED_FUNCTION_NAMES} == {}


def test_no_file_over_the_limit():
    long = {str(path.relative_to(PACKAGE.parent)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_one_training_engine():
    """Optimisers and backward passes live in edgekit/train/ only."""
    elsewhere = sorted(str(path.relative_to(PACKAGE.parent)) for path in PACKAGE.rglob("*.py")
                       if PACKAGE / "train" not in path.parents
                       and any(marker in path.read_text() for marker in ("torch.optim", ".backward(")))
    assert elsewhere == []


def test_the_command_line_answers_help_without_heavy_libraries():
    """`edgekit --help` and a mistyped option must answer at once: no torch, ONNX Runtime or OpenVINO."""
    probe = ("import sys, contextlib, io\n"
             "from edgekit.cli.commands import cli\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    try:\n"
             "        cli.main(['--help'], standalone_mode=False)\n"
             "    except SystemExit:\n"
             "        pass\n"
             "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino', 'onnx', 'nncf') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_no_loose_module_at_the_package_root():
    loose = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem not in LOOSE_MODULES)
    assert loose == []


def test_every_room_is_a_package():
    rooms = [path for path in PACKAGE.iterdir() if path.is_dir() and path.name != "__pycache__"]
    assert rooms and sorted(room.name for room in rooms if not (room / "__init__.py").is_file()) == []


def test_no_symlink_inside_the_package():
    """Package data is real files (wheels and sdists copy links inconsistently)."""
    assert sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*") if path.is_symlink()) == []


def test_the_project_targets_folder_shows_every_builtin_profile():
    builtin = sorted(path.name for path in (PACKAGE / "targets").glob("*.toml"))
    shown = PACKAGE.parent / "targets"
    assert builtin and sorted(path.name for path in shown.glob("*.toml")) == builtin
    assert all((shown / name).read_bytes() == (PACKAGE / "targets" / name).read_bytes() for name in builtin)


def test_reading_a_manifest_imports_no_torch():
    """`edgekit.artifact.manifest` needs the model config record, not the models: no torch for it."""
    probe = "import sys, edgekit.artifact.manifest\nprint('torch' in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent)
    assert result.stdout.strip().splitlines()[-1] == "False"
