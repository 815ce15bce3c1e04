"""The demo's default path records its class names, so its bench needs no sorted-folder guess."""

from __future__ import annotations

from edgekit.artifact.folder import read_manifest
from edgekit.data import labelled_images
from edgekit.demo import MODEL, train_demo_model
from edgekit.models import read_checkpoint
from edgekit.benchmark.run import output_labels
from edgekit.builder.pipeline import BuildOptions, build_artifact


def test_demo_checkpoint_and_artifact_record_class_names(tmp_path, capsys):
    checkpoint, train_dir, val_dir = train_demo_model(tmp_path, epochs=1)
    digits = [str(label) for label in range(10)]
    assert read_checkpoint(checkpoint).classes == digits

    artifact = build_artifact(MODEL, "cpu", tmp_path / "artifact", weights=checkpoint,
                              options=BuildOptions(calib=train_dir, calib_size=16, fp32_only=True,
                                                   check_latency=False))
    manifest = read_manifest(artifact)
    assert list(manifest.classes) == digits
    images = labelled_images(val_dir)
    capsys.readouterr()
    assert output_labels(images, manifest, val_dir) == list(images.labels)
    assert "warning" not in capsys.readouterr().out  # no "records no class names" guess
