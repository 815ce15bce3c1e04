"""The manifest records write exactly the JSON they read: old artifacts still read, keys unchanged."""

from __future__ import annotations

import json

import pytest

from edgekit.artifact.manifest import SCHEMA, ArtifactManifest, LatencyCheck, ModelEntry, QuantizationRecord
from edgekit.core.errors import EdgekitError


def test_a_built_manifest_round_trips_key_for_key(cpu_artifact):
    record = json.loads((cpu_artifact / "manifest.json").read_text())
    again = ArtifactManifest.from_dict(record).to_dict()
    assert again == record
    assert json.dumps(again) == json.dumps(record)  # the same key order too


def test_sections_a_build_leaves_out_stay_out():
    assert ModelEntry("m.onnx", "onnxruntime", "fp32").to_dict() == {"file": "m.onnx", "runtime": "onnxruntime",
                                                                    "precision": "fp32"}
    assert ModelEntry.of("m.xml", "openvino", "int8", companions=("m.bin",)).to_dict() == {
        "file": "m.xml", "format": "openvino-ir", "runtime": "openvino", "precision": "int8", "companions": ["m.bin"]}
    assert QuantizationRecord(skipped="--fp32-only").to_dict() == {"skipped": "--fp32-only"}
    assert LatencyCheck(measured=False, reason="off").to_dict() == {"measured": False, "reason": "off"}


def test_reading_checks_the_schema_first(cpu_artifact):
    record = json.loads((cpu_artifact / "manifest.json").read_text())
    with pytest.raises(EdgekitError, match="expected 'edgekit.artifact.folder/1'"):
        ArtifactManifest.from_dict({**record, "schema": "edgekit.artifact.folder/0"}, where="m.json")
    with pytest.raises(EdgekitError, match="m.json is not a valid edgekit manifest: models: expected `array`"):
        ArtifactManifest.from_dict({**record, "models": []}, where="m.json")
    assert ArtifactManifest.schema == SCHEMA
