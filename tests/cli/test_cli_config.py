"""`--config FILE.toml` recipes: the command line overrides the file, paths are relative to the file,
every bad key or value is one line naming the file and the key before any work, with the CLI's own
ranges, and the recipes that ship in recipes/ are valid for the commands that use them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgekit.cli.commands import cli

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.toml"))


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture()
def calls(monkeypatch):
    """What build_artifact / bench_artifact were called with (nothing is built or measured)."""
    import edgekit.benchmark.run as bench
    import edgekit.builder.pipeline as build

    seen = []

    def fake_build(model, target, out, **kwargs):
        seen.append({"model": model, "target": target, "out": out, **kwargs})
        return Path(out or "artifacts/x")

    def fake_bench(artifact, **kwargs):
        seen.append({"artifact": artifact, **kwargs})
        return {"results": [{"ok": True}]}

    monkeypatch.setattr(build, "build_artifact", fake_build)
    monkeypatch.setattr(bench, "bench_artifact", fake_bench)
    monkeypatch.setattr("edgekit.cli.commands.print_bench_table", lambda report: None)
    return seen


def _recipe(folder: Path, text: str, name: str = "recipe.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_the_command_line_overrides_the_file_and_paths_are_the_files(calls, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = _recipe(tmp_path / "recipes", 'model = "tiny_cnn"\ntarget = "cpu"\ncalib = "../images"\n'
                     'calib-size = 16\ncalib_method = "entropy"\nmean = [0.5, 0.25, 0]\nno-latency-check = true\n'
                     'weights = "/abs/w.pt"\nout = "out/a"\n')
    recipe = recipe.relative_to(tmp_path)
    assert run("build", "--config", recipe, "--calib-size", 8, "--target", "openvino").exit_code == 0
    call = calls.pop()
    options = call["options"]
    assert (call["model"], call["target"], options.calib_size) == ("tiny_cnn", "openvino", 8)  # the command line wins
    assert options.calibration_method == "entropy" and options.check_latency is False and call["mean"] == (0.5, 0.25, 0.0)
    assert Path(options.calib) == Path("recipes") / "../images"  # relative to the file's folder
    assert call["out"] == str(Path("recipes") / "out/a") and call["weights"] == "/abs/w.pt"
    # A relative path on the command line stays relative to where edgekit runs.
    assert run("build", "--config", recipe, "--calib", "here").exit_code == 0
    assert calls.pop()["options"].calib == "here"


def test_model_and_target_files_are_relative_to_the_recipe_names_are_not(calls, tmp_path):
    recipe = _recipe(tmp_path / "r", 'model = "nets/net.onnx"\ntarget = "boards/pi.toml"\nfp32-only = true\n')
    assert run("build", "--config", recipe).exit_code == 0
    call = calls.pop()
    assert call["model"] == str(tmp_path / "r" / "nets/net.onnx") and call["target"] == str(tmp_path / "r/boards/pi.toml")
    recipe = _recipe(tmp_path / "r", 'model = "tiny_cnn"\ntarget = "rpi4"\nfp32-only = true\n')
    assert run("build", "--config", recipe).exit_code == 0
    assert (calls[-1]["model"], calls[-1]["target"]) == ("tiny_cnn", "rpi4")


def test_a_user_module_file_is_relative_to_the_recipe_a_dotted_module_is_not(calls, tmp_path):
    recipe = _recipe(tmp_path / "r", 'model = "nets/my_net.py:build"\ninput-size = 32\ntarget = "cpu"\nfp32-only = true\n')
    assert run("build", "--config", recipe).exit_code == 0
    assert calls.pop()["model"] == f"{tmp_path / 'r' / 'nets/my_net.py'}:build"
    recipe = _recipe(tmp_path / "r", 'model = "/abs/my_net.py:build"\ninput-size = 32\ntarget = "cpu"\nfp32-only = true\n')
    assert run("build", "--config", recipe).exit_code == 0
    assert calls.pop()["model"] == "/abs/my_net.py:build"
    recipe = _recipe(tmp_path / "r", 'model = "mypackage.nets:build"\ninput-size = 32\ntarget = "cpu"\nfp32-only = true\n')
    assert run("build", "--config", recipe).exit_code == 0
    assert calls.pop()["model"] == "mypackage.nets:build"


def test_one_recipe_serves_build_and_bench_through_its_tables(calls, tmp_path):
    recipe = _recipe(tmp_path, '[build]\nmodel = "tiny_cnn"\ntarget = "cpu"\nfp32-only = true\n\n'
                     '[bench]\nruns = 7\nwarmup = 0\nthreads = 3\nreport = "b.md"\nplot = "b.png"\n')
    assert run("build", "--config", recipe).exit_code == 0
    assert calls.pop()["options"].fp32_only is True
    assert run("bench", "art", "--config", recipe, "--runs", 9).exit_code == 0
    call = calls.pop()
    assert (call["artifact"], call["runs"], call["warmup"], call["threads"]) == ("art", 9, 0, 3)
    assert call["report_path"] == str(tmp_path / "b.md") and call["plot_path"] == str(tmp_path / "b.png")


BAD = [
    ("unknown key", 'calib-sise = 3\n', "unknown key 'calib-sise' (did you mean 'calib-size'?)"),
    ("unknown key, no neighbour", 'colour = "red"\n', "unknown key 'colour'"),
    ("a string for a count", 'calib-size = "300"\n', "'calib-size' must be an integer, got string '300'"),
    ("a float for a count", 'calib-size = 3.7\n', "'calib-size' must be an integer, got float 3.7"),
    ("a boolean for a count", 'calib-size = true\n', "'calib-size' must be an integer, got boolean True"),
    ("a number for a flag", 'fp32-only = 1\n', "'fp32-only' must be true or false, got integer 1"),
    ("a number for a path", 'calib = 3\n', "'calib' must be a string, got integer 3"),
    ("a table for a number", 'parity-tol = {a = 1}\n', "'parity-tol' must be a number, got table"),
    ("out of range", 'calib-size = 0\n', "'calib-size': 0 is not in the range x>=1"),
    ("out of range, float", 'max-drop = 101\n', "'max-drop': 101.0 is not in the range 0<=x<=100"),
    ("nan", 'parity-tol = nan\n', "'parity-tol': nan is not a finite number"),
    ("not a choice", 'calib-method = "kl"\n', "'calib-method': 'kl' is not one of"),
    ("not 1 or 3 channels", 'in-channels = 2\n', "'in-channels': 2 is not 1 (grayscale) or 3 (RGB)"),
    ("a bad std", 'std = [1, 0]\n', "'std': every value must be > 0"),
    ("std not numbers", 'std = ["a"]\n', "'std' must be an array of numbers"),
    ("the same key twice", 'calib-size = 3\ncalib_size = 4\n', "'calib_size' is given twice"),
    ("a recipe naming a recipe", 'config = "other.toml"\n', "unknown key 'config'"),
    ("not TOML", 'calib-size = \n', "is not valid TOML (Invalid value (at line 1"),
    ("a key outside the tables", 'runs = 3\n[build]\nmodel = "tiny_cnn"\n', "key 'runs' lies outside the [build]/[bench]"),
    ("no table for the command", '[bench]\nruns = 3\n', "has no [build] table"),
]


@pytest.mark.parametrize("text,fragment", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_a_bad_recipe_is_one_line_naming_file_and_key_before_any_work(calls, tmp_path, text, fragment):
    recipe = _recipe(tmp_path, text)
    result = run("build", "--config", recipe, "-m", "tiny_cnn", "-t", "cpu", "--fp32-only")
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {recipe}") and fragment in lines[0], lines[0]
    assert calls == []


def test_a_missing_or_binary_recipe_is_one_line(calls, tmp_path):
    result = run("build", "--config", tmp_path / "nope.toml")
    assert result.exit_code == 2 and "'--config': File" in result.output and "nope.toml' does not exist" in result.output
    binary = tmp_path / "b.toml"
    binary.write_bytes(b"calib-size = 3\n\xff\xfe")
    result = run("build", "--config", binary)
    assert result.exit_code == 2 and f"error: {binary} is not UTF-8 text" in result.output
    assert calls == []


@pytest.mark.parametrize("option,value", [
    ("calib-size", "0"), ("parity-tol", "0"), ("parity-tol", "1.5"), ("max-drop", "-1"), ("opset", "12"),
    ("val-size", "0"), ("plan-budget", "0.5"), ("input-size", "5000"), ("num-classes", "0"), ("objective", '"speed"'),
])
def test_a_recipe_value_is_refused_for_the_same_reason_as_on_the_command_line(calls, tmp_path, option, value):
    from_cli = run("build", "-m", "tiny_cnn", "-t", "cpu", "--fp32-only", f"--{option}", value.strip('"'))
    recipe = _recipe(tmp_path, f"{option} = {value}\n")
    from_file = run("build", "-m", "tiny_cnn", "-t", "cpu", "--fp32-only", "--config", recipe)
    assert from_cli.exit_code == from_file.exit_code == 2
    reason = re.search(rf"Invalid value for '--{option}': (.*)", from_cli.output).group(1).strip()
    assert from_file.output.strip().endswith(f"'{option}': {reason}"), (from_cli.output, from_file.output)


def test_bench_recipe_keys_are_benchs_own(calls, tmp_path):
    recipe = _recipe(tmp_path, "calib-size = 3\n")
    result = run("bench", "art", "--config", recipe)
    assert result.exit_code == 2 and "unknown key 'calib-size'" in result.output
    recipe = _recipe(tmp_path, "runs = 0\n")
    result = run("bench", "art", "--config", recipe)
    assert result.exit_code == 2 and "'runs': 0 is not in the range x>=1" in result.output
    assert calls == []


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_the_shipped_recipes_are_valid(calls, recipe):
    assert run("build", "--config", recipe).exit_code == 0
    call = calls.pop()
    assert call["target"] == recipe.stem and Path(call["options"].calib).resolve() == ROOT / "calib"
    result = run("bench", call["out"], "--config", recipe)
    assert result.exit_code == 0, result.output
    assert Path(calls.pop()["data"]).resolve() == ROOT / "heldout"


def test_a_recipe_builds_and_benches_a_real_artifact_beside_it(pattern_data, trained_tiny, tmp_path, monkeypatch):
    import shutil

    from edgekit.artifact.folder import read_manifest

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(trained_tiny["checkpoint"], project / "tiny.pt")
    recipe = _recipe(project, f'[build]\nmodel = "tiny_cnn"\ntarget = "cpu"\nweights = "tiny.pt"\n'
                              f'calib = "{pattern_data["train"]}"\ncalib-size = 32\nout = "art"\nno-latency-check = true\n'
                              f'[bench]\ndata = "{pattern_data["val"]}"\nruns = 3\nwarmup = 0\nreport = "bench.md"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = run("build", "--config", "../project/recipe.toml", "--calib-size", 16)
    assert result.exit_code == 0, result.output
    assert read_manifest(project / "art").quantization.calibration.images == 16  # the command line won
    result = run("bench", project / "art", "--config", recipe)
    assert result.exit_code == 0, result.output
    assert "| model_int8.onnx | onnxruntime | int8 |" in (project / "bench.md").read_text()
    assert list(elsewhere.iterdir()) == []
