"""The manifest's JSON Schema (docs/manifest.schema.json), generated from its records, for readers that
are not edgekit (a deployment script, a board-side tool, a CI check of artifacts).

After changing a record of the manifest, regenerate the committed file (a test compares them):

    python -m edgekit.artifact.manifest_schema > docs/manifest.schema.json

The schema says what each field may hold; what edgekit checks beyond it on read (every model file
is listed in ``files``, the input shape fits the preprocessing, the class names fit the outputs) is
in docs/artifact.md.
"""

from __future__ import annotations

import json

import msgspec

from edgekit.artifact.manifest import SCHEMA, ArtifactManifest, QuantizationRecord


def manifest_json_schema() -> dict:
    generated = msgspec.json.schema(ArtifactManifest)
    definitions = generated["$defs"]
    # Both are defaults for a record built in Python; a manifest read from a file must carry them.
    definitions["ArtifactManifest"]["required"] += ["schema", "files"]
    # The quantizer's settings sit at the top of the section in the JSON, not under "settings"
    # (QuantizationRecord.to_dict): any other key is one of them.
    quantization = definitions[QuantizationRecord.__name__]
    del quantization["properties"]["settings"]
    quantization["additionalProperties"] = True
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"edgekit artifact manifest ({SCHEMA})", **generated}


def manifest_json_schema_text() -> str:
    return json.dumps(manifest_json_schema(), indent=2) + "\n"


if __name__ == "__main__":
    print(manifest_json_schema_text(), end="")
