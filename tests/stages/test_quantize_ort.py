import numpy as np
import pytest

from edgekit.runtimes import ort_logits
from edgekit.stages.export import export_onnx
from edgekit.stages.quantize_ort import calibration_ranges, quantize_onnx_static
from edgekit.targets import load_target


@pytest.fixture(scope="module")
def fp32_onnx(trained_tiny, tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "fp32.onnx"
    export_onnx(trained_tiny["model"], trained_tiny["x_val"], path)
    return path


def test_int8_agrees_with_fp32_on_held_out_images(fp32_onnx, trained_tiny, tmp_path):
    calibration = trained_tiny["x_val"][:32]
    int8 = tmp_path / "int8.onnx"
    record = quantize_onnx_static(fp32_onnx, int8, calibration, load_target("cpu").quantization)
    assert record["activation_type"] == "uint8" and record["per_channel"] is True
    x, y = trained_tiny["x_val"], trained_tiny["y_val"]
    fp32_top1, int8_top1 = ort_logits(fp32_onnx, x).argmax(1), ort_logits(int8, x).argmax(1)
    assert (fp32_top1 == int8_top1).mean() >= 0.95
    assert (int8_top1 == y).mean() >= (fp32_top1 == y).mean() - 0.05
    assert int8.stat().st_size < fp32_onnx.stat().st_size / 2


def test_int8_graph_is_qdq(fp32_onnx, trained_tiny, tmp_path):
    import onnx

    int8 = tmp_path / "int8.onnx"
    quantize_onnx_static(fp32_onnx, int8, trained_tiny["x_val"][:16], load_target("cpu").quantization)
    ops = {node.op_type for node in onnx.load(str(int8)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops


def test_entropy_calibration_is_not_minmax_in_disguise(fp32_onnx, trained_tiny, tmp_path):
    """quantize_static(Entropy) equals MinMax in this ORT; our calibration must clip some ranges."""
    images = trained_tiny["x_val"][:48]
    _, minmax = calibration_ranges(fp32_onnx, images, "minmax", tmp_path)
    _, entropy = calibration_ranges(fp32_onnx, images, "entropy", tmp_path)
    narrower = 0
    for name in minmax.keys():
        low, high = (float(np.asarray(v).squeeze()) for v in minmax[name].range_value)
        e_low, e_high = (float(np.asarray(v).squeeze()) for v in entropy[name].range_value)
        assert e_low >= low - 1e-6 and e_high <= high + 1e-6  # entropy only ever clips
        narrower += e_high < high * 0.99
    assert narrower > 0


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_other_calibration_methods_quantize(fp32_onnx, trained_tiny, tmp_path, method):
    from dataclasses import replace

    settings = replace(load_target("cpu").quantization, calibration_method=method)
    record = quantize_onnx_static(fp32_onnx, tmp_path / "q.onnx", trained_tiny["x_val"][:32], settings)
    assert record["calibration_method"] == method and "calibration_options" in record
    x = trained_tiny["x_val"]
    agreement = (ort_logits(fp32_onnx, x).argmax(1) == ort_logits(tmp_path / "q.onnx", x).argmax(1)).mean()
    assert agreement >= 0.9


def _ort_reference_ranges(model_path, images, method, workdir):
    """ORT's own calibrator fed as edgekit fed it before batching: one collect_data per 16 images."""
    from onnxruntime.quantization.calibrate import create_calibrator

    from edgekit.stages.quantize_ort import ENTROPY_BINS, MOVING_AVERAGE, PERCENTILE
    from onnxruntime.quantization import CalibrationMethod

    ort_method, options = {"minmax": (CalibrationMethod.MinMax, {}),
                           "moving-average": (CalibrationMethod.MinMax, MOVING_AVERAGE),
                           "percentile": (CalibrationMethod.Percentile, PERCENTILE),
                           "entropy": (CalibrationMethod.Entropy, ENTROPY_BINS)}[method]
    calibrator = create_calibrator(model_path, None, augmented_model_path=str(workdir / "reference.onnx"),
                                   calibrate_method=ort_method, extra_options=options)

    class Chunk:
        def __init__(self, chunk):
            self._batches = iter([{"input": chunk}])

        def get_next(self):
            return next(self._batches, None)

    for start in range(0, len(images), 16):
        calibrator.collect_data(Chunk(images[start:start + 16]))
    return calibrator.compute_data()


@pytest.mark.parametrize("method", ["minmax", "moving-average", "percentile", "entropy"])
@pytest.mark.parametrize("budget", [None, 1])  # None: the default run size; 1 byte: one image per run
def test_batched_ranges_equal_ort_calibrators(fp32_onnx, trained_tiny, tmp_path, monkeypatch, method, budget):
    """Reducing statistics per run (and splitting a 16-image group into smaller runs) changes nothing."""
    from edgekit.stages import calibration_runs

    if budget is not None:
        original = calibration_runs.images_per_run
        monkeypatch.setattr("edgekit.stages.quantize_ort.images_per_run",
                            lambda fixed, image_bytes: original(fixed, image_bytes, budget=budget))
    images = trained_tiny["x_val"][:40]  # two full groups and a partial one
    _, ranges = calibration_ranges(fp32_onnx, images, method, tmp_path)
    reference = _ort_reference_ranges(fp32_onnx, images, method, tmp_path)
    assert set(ranges.keys()) == set(reference.keys()) and len(ranges.keys()) > 0
    for name in reference.keys():
        got, expected = ranges[name].range_value, reference[name].range_value
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                                   rtol=1e-6, atol=1e-7, err_msg=f"{method}: {name}")


def test_run_size_obeys_fixed_batch_and_budget():
    from edgekit.stages.calibration_runs import GROUP, images_per_run

    assert images_per_run(1, 10**9) == 1 and images_per_run(4, 1) == 4  # a fixed batch is fed as it is
    assert images_per_run(None, 1) == GROUP
    assert images_per_run(None, 60 * 2**20, budget=256 * 2**20) == 4  # 4 x 60 MB within 256 MB, 8 x 60 MB not
    assert images_per_run(None, 10**12) == 1 and images_per_run(None, None) == 1


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_calibration_holds_no_more_outputs_with_more_images(fp32_onnx, trained_tiny, tmp_path, monkeypatch, method):
    """The most session outputs alive at once is the same for 32 and 96 images (a bound, not a sum)."""
    import weakref

    import onnxruntime.quantization.calibrate as ort_calibrate

    real_create = ort_calibrate.create_calibrator

    def peak_alive(count: int) -> int:
        alive, peak = [0], [0]

        class CountingSession:
            def __init__(self, session):
                self._session = session

            def __getattr__(self, name):
                return getattr(self._session, name)

            def run(self, names, feeds):
                values = self._session.run(names, feeds)
                for value in values:
                    alive[0] += 1
                    weakref.finalize(value, lambda: alive.__setitem__(0, alive[0] - 1))
                peak[0] = max(peak[0], alive[0])
                return values

        def counting_create(*args, **kwargs):
            calibrator = real_create(*args, **kwargs)
            calibrator.infer_session = CountingSession(calibrator.infer_session)
            return calibrator

        monkeypatch.setattr(ort_calibrate, "create_calibrator", counting_create)
        images = np.concatenate([trained_tiny["x_val"]] * 4)[:count]
        calibration_ranges(fp32_onnx, images, method, tmp_path)
        return peak[0]

    assert peak_alive(96) == peak_alive(32)
