import numpy as np
import pytest

from edgekit.builder.export import check_parity, export_onnx
from edgekit.core.errors import EdgekitError


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_export_matches_pytorch_on_the_trained_model(trained_tiny, tmp_path, exporter):
    path = tmp_path / "m.onnx"
    record = export_onnx(trained_tiny["model"], trained_tiny["x_val"], path, exporter=exporter)
    assert record.opset == {"legacy": 17, "dynamo": 18}[exporter]
    parity = check_parity(trained_tiny["model"], path, trained_tiny["x_val"], tolerance=1e-4, input_source="val")
    assert parity.passed and parity.max_normalised_diff < 1e-5
    assert parity.top1_agreement == 1.0


def test_exported_model_takes_any_batch_size(trained_tiny, tmp_path):
    from edgekit.runtimes.sessions import ort_logits

    path = tmp_path / "m.onnx"
    export_onnx(trained_tiny["model"], trained_tiny["x_val"], path)
    assert ort_logits(path, trained_tiny["x_val"][:7], batch_size=7).shape == (7, 4)


def test_parity_failure_raises(trained_tiny, tmp_path):
    path = tmp_path / "m.onnx"
    export_onnx(trained_tiny["model"], trained_tiny["x_val"], path)
    with pytest.raises(EdgekitError, match="parity check failed"):
        check_parity(trained_tiny["model"], path, trained_tiny["x_val"], tolerance=0.0, input_source="val")


def test_input_that_the_model_cannot_take_is_a_clear_error(trained_tiny, tmp_path):
    wrong = np.zeros((1, 1, 32, 32), dtype=np.float32)  # tiny_cnn expects 3 channels
    with pytest.raises(EdgekitError, match="cannot run on input of shape"):
        export_onnx(trained_tiny["model"], wrong, tmp_path / "m.onnx")
