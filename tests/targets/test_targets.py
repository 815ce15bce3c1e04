import dataclasses
from pathlib import Path

import pytest

from edgekit.core.errors import EdgekitError
from edgekit.backends import backend_class, runtimes
from edgekit.targets.profiles import TOP_LEVEL, Target, list_targets, load_target, quantization_rules


def test_builtin_targets_are_listed_and_valid():
    assert {"cpu", "openvino", "rpi4"} <= set(list_targets())
    for name in list_targets():
        assert load_target(name).threads >= 1


def test_builtin_profiles_keep_their_values():
    assert load_target("cpu").to_dict() == {
        "name": "cpu", "description": "x86-64 CPU, ONNX Runtime (CPUExecutionProvider)", "arch": "x86_64",
        "runtime": "onnxruntime", "threads": 2, "inference_precision": None, "int8_dot_product": None,
        "cost_model": None,
        "quantization": {"backend": "onnxruntime", "format": "qdq", "activation_type": "uint8",
                         "weight_type": "int8", "per_channel": True, "reduce_range": True,
                         "calibration_method": "minmax"},
        "rationale": load_target("cpu").rationale}
    vino = load_target("openvino")
    assert (vino.runtime, vino.threads, vino.inference_precision) == ("openvino", 2, "f32")
    assert vino.quantization.to_dict() == {"backend": "nncf", "format": "openvino-ir", "preset": "performance"}
    assert load_target("rpi4").threads == 4


def test_schema_tables_cover_exactly_the_dataclass_fields():
    # The [quantization] keys are exactly the fields of the backends' settings dataclasses.
    settings = [backend_class(runtime).settings_type for runtime in runtimes()]
    assert set(quantization_rules()) == {f.name for kind in settings for f in dataclasses.fields(kind)}
    assert set(TOP_LEVEL) == {f.name for f in dataclasses.fields(Target)} - {"source"}


def test_rpi4_is_arm_without_dot_product_and_says_why():
    pi = load_target("rpi4")
    assert (pi.arch, pi.int8_dot_product, pi.quantization.per_channel) == ("aarch64", False, True)
    assert "dot-product" in pi.rationale["int8_expectation"]
    assert pi.cost_model == "cortex-a72"  # plans ranked by estimated A72 cycles where no Pi is at hand


def test_unknown_target_names_the_known_ones():
    with pytest.raises(EdgekitError, match="known targets: cpu, openvino, rpi4"):
        load_target("jetson")


GOOD = ('name = "avx2"\ndescription = "AVX2 without VNNI"\narch = "x86_64"\nruntime = "onnxruntime"\n'
        'threads = 4\n[quantization]\nbackend = "onnxruntime"\nformat = "qdq"\nreduce_range = true\n')
GOOD_VINO = ('name = "v"\narch = "x86_64"\nruntime = "openvino"\nthreads = 2\ninference_precision = "f32"\n'
             '[quantization]\nbackend = "nncf"\nformat = "openvino-ir"\npreset = "mixed"\n')


def test_user_profile_from_a_toml_file(tmp_path):
    path = tmp_path / "avx2.toml"
    path.write_text(GOOD)
    target = load_target(str(path))
    assert target.quantization.reduce_range is True and target.threads == 4
    assert target.source == str(path)


def test_minimal_profiles_get_the_defaults(tmp_path):
    path = tmp_path / "min.toml"
    path.write_text(GOOD.replace('description = "AVX2 without VNNI"\n', "").replace("reduce_range = true\n", ""))
    target = load_target(str(path))
    assert (target.description, target.quantization.per_channel, target.rationale) == ("", True, {})
    path.write_text(GOOD_VINO)
    assert load_target(str(path)).quantization.preset == "mixed"


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# (case id, profile text, fragment the message must hold: the key and what was wrong)
BAD = [
    ("threads negative", _edit(GOOD, "threads = 4", "threads = -1"),
     "threads must be an integer from 1 to 1024, got -1"),
    ("threads zero", _edit(GOOD, "threads = 4", "threads = 0"), "threads must be an integer from 1 to 1024, got 0"),
    ("threads float", _edit(GOOD, "threads = 4", "threads = 2.5"), "threads must be an integer"),
    ("threads bool", _edit(GOOD, "threads = 4", "threads = true"),
     "threads must be an integer from 1 to 1024, got true"),
    ("threads huge", _edit(GOOD, "threads = 4", "threads = 100000"), "threads must be an integer from 1 to 1024"),
    ("threads string", _edit(GOOD, "threads = 4", 'threads = "4"'), "threads must be an integer"),
    ("per_channel string", _edit(GOOD, "reduce_range = true", 'per_channel = "yes"'),
     "quantization.per_channel must be true or false, got 'yes'"),
    ("reduce_range int", _edit(GOOD, "reduce_range = true", "reduce_range = 1"),
     "quantization.reduce_range must be true or false, got 1"),
    ("int8_dot_product string", _edit(GOOD, "threads = 4", 'threads = 4\nint8_dot_product = "no"'),
     "int8_dot_product must be true or false, got 'no'"),
    ("name int", _edit(GOOD, 'name = "avx2"', "name = 3"), "name must be letters, digits"),
    ("name with slash", _edit(GOOD, 'name = "avx2"', 'name = "../avx2"'), "name must be"),
    ("name empty", _edit(GOOD, 'name = "avx2"', 'name = ""'), "name must be"),
    ("description list", _edit(GOOD, 'description = "AVX2 without VNNI"', "description = []"),
     "description must be a string, got []"),
    ("rationale not a table", _edit(GOOD, 'name = "avx2"', 'name = "avx2"\nrationale = "because"'),
     "rationale must be a table of strings, got 'because'"),
    ("rationale value not a string", GOOD + "[rationale]\nquantization = 3\n",
     "rationale.quantization must be a string"),
    ("runtime unknown", _edit(GOOD, 'runtime = "onnxruntime"', 'runtime = "tensorrt"'),
     "runtime must be one of onnxruntime, openvino, got 'tensorrt'"),
    ("cost model unknown", _edit(GOOD, "threads = 4", 'threads = 4\ncost_model = "cortex-a53"'),
     "cost_model must be one of cortex-a72, got 'cortex-a53'"),
    ("arch unknown", _edit(GOOD, 'arch = "x86_64"', 'arch = "riscv64"'), "arch must be one of x86_64, aarch64"),
    ("arch alias", _edit(GOOD, 'arch = "x86_64"', 'arch = "amd64"'),
     "arch must be one of x86_64, aarch64, got 'amd64'"),
    ("backend unknown", _edit(GOOD, 'backend = "onnxruntime"', 'backend = "tflite"'),
     "quantization.backend must be one of onnxruntime, nncf, got 'tflite'"),
    ("backend vs runtime", _edit(GOOD, 'backend = "onnxruntime"', 'backend = "nncf"'),
     "quantization.backend must be onnxruntime for runtime onnxruntime, got 'nncf'"),
    ("openvino runtime with ort backend", _edit(GOOD_VINO, 'backend = "nncf"', 'backend = "onnxruntime"'),
     "quantization.backend must be nncf for runtime openvino"),
    ("format unknown", _edit(GOOD, 'format = "qdq"', 'format = "qoperator"'), "quantization.format must be one of"),
    ("format vs backend", _edit(GOOD, 'format = "qdq"', 'format = "openvino-ir"'),
     "quantization.format must be qdq for backend onnxruntime, got 'openvino-ir'"),
    ("activation_type", _edit(GOOD, "reduce_range = true", 'activation_type = "int4"'),
     "quantization.activation_type must be one of uint8, int8, got 'int4'"),
    ("weight_type", _edit(GOOD, "reduce_range = true", 'weight_type = "fp16"'),
     "quantization.weight_type must be one of"),
    ("calibration_method", _edit(GOOD, "reduce_range = true", 'calibration_method = "kl"'),
     "quantization.calibration_method must be one of minmax, moving-average, percentile, entropy, got 'kl'"),
    ("preset unknown", _edit(GOOD_VINO, 'preset = "mixed"', 'preset = "fast"'),
     "quantization.preset must be one of performance, mixed, got 'fast'"),
    ("preset on ort", GOOD + 'preset = "mixed"\n', "quantization.preset applies to the nncf backend only"),
    ("ort key on nncf", GOOD_VINO + "per_channel = false\n",
     "quantization.per_channel applies to the onnxruntime backend only"),
    ("inference_precision unknown", _edit(GOOD_VINO, '"f32"', '"fp64"'),
     "inference_precision must be one of f32, bf16, f16, got 'fp64'"),
    ("inference_precision on ort", _edit(GOOD, "threads = 4", 'threads = 4\ninference_precision = "f32"'),
     "inference_precision applies to the openvino runtime only"),
    ("typo top level", _edit(GOOD, "threads = 4", "thread = 4"), "unknown key thread (did you mean threads?)"),
    ("typo in quantization", _edit(GOOD, "reduce_range = true", "per_chanel = true"),
     "unknown key quantization.per_chanel (did you mean quantization.per_channel?)"),
    ("unknown key, quoted", GOOD + '"odd\\nkey" = 1\n', "unknown key quantization.'odd\\nkey'"),
    ("source is not settable", _edit(GOOD, "threads = 4", 'threads = 4\nsource = "x"'), "unknown key source"),
    ("missing name", _edit(GOOD, 'name = "avx2"\n', ""), "missing required key name"),
    ("missing several", 'name = "x"\n', "missing required keys arch, runtime, threads, quantization"),
    ("missing quantization", GOOD.split("[quantization]")[0], "missing required key quantization"),
    ("missing backend", _edit(GOOD, 'backend = "onnxruntime"\n', ""), "missing required key quantization.backend"),
    ("missing format", _edit(GOOD, 'format = "qdq"\n', ""), "missing required key quantization.format"),
    ("quantization not a table", GOOD.split("[quantization]")[0] + 'quantization = "qdq"\n',
     "quantization must be a table, got 'qdq'"),
    ("empty file", "", "missing required keys name"),
    ("not toml", "name = \n", "is not valid TOML"),
]


@pytest.mark.parametrize("text,fragment", [case[1:] for case in BAD], ids=[case[0] for case in BAD])
def test_bad_profiles_are_one_line_errors_naming_file_and_key(tmp_path, text, fragment):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(EdgekitError) as caught:
        load_target(str(path))
    message = str(caught.value)
    assert message.startswith(f"target profile {path}"), message
    assert fragment in message, message
    assert "\n" not in message and "\n" not in caught.value.one_line()


def _one_line_error(target: str) -> str:
    with pytest.raises(EdgekitError) as caught:
        load_target(target)
    message = caught.value.one_line()
    assert "\n" not in message
    return message


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(GOOD.replace("AVX2 without VNNI", "caf\xe9").encode("latin-1"))
    assert _one_line_error(str(path)).startswith(f"target profile {path} is not UTF-8 text (byte 0xe9")


def test_paths_that_are_not_readable_profiles(tmp_path, monkeypatch):
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    assert _one_line_error(str(folder)) == f"target profile {folder} is a directory, not a .toml file"
    assert _one_line_error(str(tmp_path)) == f"target profile {tmp_path} is a directory, not a .toml file"
    missing = tmp_path / "nope.toml"
    assert _one_line_error(str(missing)) == f"target profile {missing} does not exist"
    other = tmp_path / "profile.txt"
    other.write_text(GOOD)
    assert _one_line_error(str(other)).startswith(f"target profile {other} must be a .toml file")
    assert "known targets: cpu" in _one_line_error(str(tmp_path / "nope"))

    locked = tmp_path / "locked.toml"
    locked.write_text(GOOD)

    def denied(self):  # chmod 000 does not stop root, which CI may be
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    message = _one_line_error(str(locked))
    assert message.startswith(f"target profile {locked} cannot be read") and "Permission denied" in message


def test_builtin_names_do_not_reach_outside_the_builtin_folder(tmp_path, monkeypatch):
    # Once, "../x" was looked up as BUILTIN_DIR/"../x.toml"; only listed names are built-in now.
    monkeypatch.chdir(tmp_path)
    assert "unknown target '../targets/cpu'" in _one_line_error("../targets/cpu")  # BUILTIN_DIR/../targets/cpu.toml exists


def test_a_bad_profile_through_the_cli_is_one_line_and_builds_nothing(tmp_path):
    from click.testing import CliRunner

    from edgekit.cli.commands import cli

    bad = tmp_path / "bad.toml"
    bad.write_text(_edit(GOOD, "threads = 4", "threads = -1"))
    out = tmp_path / "o"
    result = CliRunner().invoke(cli, ["build", "-m", "tiny_cnn", "-t", str(bad), "--fp32-only", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert lines == [f"error: target profile {bad}: threads must be an integer from 1 to 1024, got -1"]
    assert "Traceback" not in result.output
    assert not out.exists() and not list(tmp_path.glob(".o*"))
