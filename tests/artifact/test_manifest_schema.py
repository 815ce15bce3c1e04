"""One declared schema: the committed JSON Schema is what the records generate, and reading a manifest
refuses, naming the field, what the records' types and constraints do not allow."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.artifact.manifest import SAFE_NAME, ArtifactManifest, safe_name_problem
from edgekit.artifact.manifest_schema import manifest_json_schema_text
from edgekit.core.errors import EdgekitError

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_json_schema_is_what_the_records_generate():
    committed = (ROOT / "docs" / "manifest.schema.json").read_text()
    assert committed == manifest_json_schema_text(), (
        "regenerate it: python -m edgekit.artifact.manifest_schema > docs/manifest.schema.json")


def test_the_schema_describes_the_json_not_the_python_shape():
    schema = json.loads(manifest_json_schema_text())
    manifest = schema["$defs"]["ArtifactManifest"]
    assert {"schema", "files", "models", "target"} <= set(manifest["required"])
    assert "settings" not in schema["$defs"]["QuantizationRecord"]["properties"]  # settings sit at the top
    assert manifest["properties"]["files"]["propertyNames"]["pattern"] == SAFE_NAME


NAMES = ["model.onnx", "openvino/model_int8.xml", "a/b/c.bin", "...", ".hidden", "x..y", "manifest.json.bak",
         "", "/etc/passwd", "../outside.onnx", "a/../b", "a//b", "a/", "./a", "a/.", "back\\slash", "nul\0",
         "manifest.json", "sub/manifest.json"]


@pytest.mark.parametrize("name", NAMES)
def test_the_schema_pattern_and_the_worded_check_agree_on_file_names(name):
    assert (re.search(SAFE_NAME, name) is not None) == (safe_name_problem(name) is None)


@pytest.fixture(scope="module")
def record(cpu_artifact) -> dict:
    return json.loads((cpu_artifact / "manifest.json").read_text())


def _set(path: tuple, value):
    def change(manifest):
        node = manifest
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return change


REFUSED = {  # what each edit breaks, and the start of the one line that must name it
    "negative bytes": (_set(("files", "model_int8.onnx", "bytes"), -1),
                       "files['model_int8.onnx'].bytes: expected `int` >= 0"),
    "unknown precision": (_set(("models", 1, "precision"), "fp16"), "models[1].precision: invalid enum value 'fp16'"),
    "unknown int8 kernels": (_set(("models", 2, "x86_int8_kernels"), "fast"),
                             "models[2].x86_int8_kernels: invalid enum"),
    "companions not a list": (_set(("models", 1, "companions"), "w.bin"), "models[1].companions: expected `array`"),
    "unsafe companion": (_set(("models", 1, "companions"), ["../w.bin"]),
                         "models[1].companions[0]: expected `str` matching"),
    "threads too many": (_set(("target", "threads"), 4096), "target.threads: expected `int` <= 1024"),
    "pytorch target": (_set(("target", "runtime"), "pytorch"), "target.runtime: invalid enum value 'pytorch'"),
    "three-number shape": (_set(("input", "shape"), [1, 3, 32]), "input.shape: expected `array` of length >= 4"),
    "model without name": (_set(("model", "name"), None), "model.name: expected `str`, got `null`"),
    "model config out of range": (_set(("model", "config", "num_classes"), 0),
                                  "model.config: model 'tiny_cnn': num_classes must be"),
    "parity not a number": (_set(("export", "parity", "max_abs_diff"), "small"),
                            "export.parity.max_abs_diff: expected `float`, got `str`"),
    "simplify without node counts": (lambda m: m["simplify"].pop("nodes_after"), "simplify.nodes_after: required"),
    "int8 comparison not an object": (_set(("quantization", "int8_vs_fp32"), []),
                                      "quantization.int8_vs_fp32: expected `object | null`, got `array`"),
    "versions not strings": (_set(("versions", "onnx"), 1), "versions['onnx']: expected `str | null`, got `int`"),
    "output without meaning": (lambda m: m["output"].pop("meaning"), "output.meaning: required"),
    "duplicate class names": (_set(("classes",), ["blob", "blob", "horizontal", "vertical"]),
                              "'classes' must be a list of distinct class names"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_manifest_that_does_not_fit_is_refused_in_one_line_naming_the_field(record, case):
    change, start = REFUSED[case]
    edited = copy.deepcopy(record)
    change(edited)
    with pytest.raises(EdgekitError) as caught:
        ArtifactManifest.from_dict(edited, where="m.json")
    message = caught.value.one_line()
    assert message.startswith(f"m.json is not a valid edgekit manifest: {start}"), message
    assert "\n" not in str(caught.value)


def test_the_typed_sections_read_as_records_with_attributes(record):
    manifest = ArtifactManifest.from_dict(record)
    assert manifest.export.exporter == "legacy" and manifest.export.parity.passed is True
    assert manifest.simplify.nodes_after <= manifest.simplify.nodes_before
    assert manifest.output.name == "logits" and manifest.versions["python"]
    assert 0.9 <= manifest.quantization.int8_vs_fp32.top1_agreement <= 1.0


def test_reading_a_manifest_does_not_import_torch():
    code = "import edgekit.artifact.manifest, sys; assert 'torch' not in sys.modules and 'msgspec' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
