"""An artifact is verified or refused: tampered, unlisted, escaping or malformed manifests never run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
from click.testing import CliRunner

from edgekit.artifact.folder import read_manifest
from edgekit.cli.commands import cli
from edgekit.core.errors import EdgekitError


def _edit(manifest_path, change):
    manifest = json.loads(manifest_path.read_text())
    change(manifest)
    manifest_path.write_text(json.dumps(manifest))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tamper_bytes(art):
    with (art / "model_int8.onnx").open("ab") as handle:
        handle.write(b"\0")


def _unlisted_model(art):
    shutil.copy(art / "model_int8.onnx", art / "extra.onnx")
    _edit(art / "manifest.json", lambda m: m["models"].append({**m["models"][-1], "file": "extra.onnx"}))


def _escaping_model(art):
    outside = art.parent / "outside.onnx"
    shutil.copy(art / "model_int8.onnx", outside)
    data = outside.read_bytes()

    def change(m):
        m["files"]["../outside.onnx"] = {"sha256": _sha(data), "bytes": len(data)}
        m["models"][-1]["file"] = "../outside.onnx"

    _edit(art / "manifest.json", change)


def _absolute_model(art):
    path = str((art / "model_int8.onnx").resolve())
    data = (art / "model_int8.onnx").read_bytes()

    def change(m):
        m["files"][path] = {"sha256": _sha(data), "bytes": len(data)}
        m["models"][-1]["file"] = path

    _edit(art / "manifest.json", change)


def _symlinked_model(art):
    outside = art.parent / "elsewhere.onnx"
    (art / "model_int8.onnx").rename(outside)
    os.symlink(outside, art / "model_int8.onnx")  # same bytes, same hash: still refused


def _symlinked_manifest(art):
    (art / "manifest.json").rename(art.parent / "real-manifest.json")
    os.symlink(art.parent / "real-manifest.json", art / "manifest.json")


CASES = {
    "modified model bytes": (_tamper_bytes, "does not match its sha256"),
    "model entry not in files": (_unlisted_model, "which 'files' does not list"),
    "model outside the folder": (_escaping_model, "outside the artifact"),
    "absolute model path": (_absolute_model, "not a relative file name"),
    "symlinked model": (_symlinked_model, "symbolic link"),
    "symlinked manifest": (_symlinked_manifest, "not a regular file"),
    "missing file": (lambda art: (art / "model_fp32.onnx").unlink(), "is missing"),
    "manifest is a list": (lambda art: (art / "manifest.json").write_text("[]"), "expected an object"),
    "manifest not JSON": (lambda art: (art / "manifest.json").write_text("{nope"), "not valid JSON"),
    "NaN in manifest": (lambda art: (art / "manifest.json").write_text(
        (art / "manifest.json").read_text().replace('"threads": 2', '"threads": NaN')), "not valid JSON"),
    "no files": (lambda art: _edit(art / "manifest.json", lambda m: m.pop("files")), "'files' must be"),
    "files is a list": (lambda art: _edit(art / "manifest.json", lambda m: m.update(files=[])), "'files' must be"),
    "bad sha256": (lambda art: _edit(art / "manifest.json",
                                     lambda m: m["files"]["model_int8.onnx"].update(sha256="abc")), "sha256"),
    "models missing": (lambda art: _edit(art / "manifest.json", lambda m: m.pop("models")), "models: required"),
    "unknown runtime": (lambda art: _edit(art / "manifest.json", lambda m: m["models"][0].update(runtime="tvm")),
                        "models[0].runtime: invalid enum value 'tvm'"),
    "threads 0": (lambda art: _edit(art / "manifest.json", lambda m: m["target"].update(threads=0)),
                  "target.threads"),
    "threads true": (lambda art: _edit(art / "manifest.json", lambda m: m["target"].update(threads=True)),
                     "target.threads"),
    "huge input shape": (lambda art: _edit(art / "manifest.json", lambda m: m["input"].update(shape=[1, 3, 9999, 9999])),
                         "does not match the preprocessing"),
    "std zero": (lambda art: _edit(art / "manifest.json", lambda m: m["preprocessing"].update(std=[0, 1, 1])),
                 "preprocessing"),
    "classes wrong count": (lambda art: _edit(art / "manifest.json", lambda m: m.update(classes=["a"])), "classes"),
    "wrong schema": (lambda art: _edit(art / "manifest.json", lambda m: m.update(schema="edgekit.artifact.folder/9")),
                     "schema"),
}


@pytest.fixture()
def artifact(cpu_artifact, tmp_path):
    folder = tmp_path / "art"
    shutil.copytree(cpu_artifact, folder)
    return folder


def test_the_untouched_copy_verifies(artifact):
    assert read_manifest(artifact).to_dict()["target"]["name"] == "cpu"


@pytest.mark.parametrize("case", sorted(CASES))
def test_tampered_artifacts_are_refused_by_bench_before_anything_runs(artifact, case):
    tamper, fragment = CASES[case]
    tamper(artifact)
    with pytest.raises(EdgekitError) as caught:
        read_manifest(artifact)
    assert fragment in caught.value.one_line()
    result = CliRunner().invoke(cli, ["bench", str(artifact), "--runs", "2", "--warmup", "0"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and len(errors) == 1 and fragment in errors[0], result.output
    assert "model_int8.onnx   onnx" not in result.output  # no table: nothing was measured
    assert "Traceback" not in result.output


def test_verify_refuses_a_tampered_artifact_before_emulating(artifact):
    _tamper_bytes(artifact)
    result = CliRunner().invoke(cli, ["verify", str(artifact)])
    assert result.exit_code == 1 and "does not match its sha256" in result.output
    assert "emulated" not in result.output


def test_files_beside_the_listed_ones_are_never_read(artifact):
    (artifact / "notes.txt").write_text("the manifest does not list this")
    assert "notes.txt" not in read_manifest(artifact).to_dict()["files"]


def test_onnx_external_data_must_be_a_listed_companion(artifact):
    """A listed, hash-checked .onnx could still make ONNX Runtime read an unlisted file beside it."""
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    from edgekit.artifact.folder import sha256_file

    model = onnx.load(str(artifact / "model_fp32.onnx"))
    convert_model_to_external_data(model, all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
    onnx.save(model, str(artifact / "model_fp32.onnx"))

    def relist(m):
        for name in ("model_fp32.onnx",):
            m["files"][name] = {"sha256": sha256_file(artifact / name), "bytes": (artifact / name).stat().st_size}

    _edit(artifact / "manifest.json", relist)
    with pytest.raises(EdgekitError, match="reads external data 'weights.bin'"):
        read_manifest(artifact)
