import numpy as np
import pytest

from edgekit.builder.export import export_onnx
from edgekit.quantize.ort import calibration_ranges, quantize_onnx_static
from edgekit.runtimes.sessions import ort_logits
from edgekit.targets.profiles import load_target


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

    from edgekit.quantize.ort import ENTROPY_BINS, MOVING_AVERAGE, PERCENTILE
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


# How far edgekit's ranges may be from the reference's, derived from the arithmetic.
#
# Both sides reduce the same tensors exactly (min/max, integer bin counts), except that edgekit's
# inference runs may be smaller than the reference's 16 images: ONNX Runtime splits a Conv or a
# pooling over its threads by batch size, so a tensor computed one image at a time can differ from
# the 16-image one by a few ulps of its largest values (how much depends on the CPU and its core
# count, hence measured here, per tensor: d = max |x_run - x_16|; d == 0 wherever the run sizes
# match, and then every check below is exact). From d:
# - minmax: min and max are exact and |max a - max b| <= max |a - b|, so endpoints differ by <= d.
# - moving-average: each group's endpoints by <= d; ORT's merge m += c (m_g - m) is a convex
#   combination, so that stays <= d, plus its float32 rounding: 3 roundings of eps/2 * |m| in each
#   of the 2 computations, per merge (groups - 1 merges).
# - percentile/entropy: ranges are histogram edges. The first group's histogram has 2048 bins
#   between endpoints that move by <= d (entropy: -T and T = max |x|; percentile: min |x| and
#   max |x|), so its edges by <= d and the width w by <= 2d/2048; later groups add whole bins of w.
#   With `bins` bins in the end, every edge moves by <= 2d * bins/2048, plus the float32 rounding
#   of the edges (a few eps * |edge|): the edge slack s. Each value moves by <= d and each edge
#   by <= s; while d + s < w (asserted), a value lands in its reference bin or a neighbour (or,
#   for |x| below percentile's first edge, which ORT drops, in the neighbouring "dropped" bin):
#   the cumulative counts interleave, C_ref[i-1] <= C_ours[i] <= C_ref[i+1], checked exactly.
#   (A ReLU's exact zeros do move: entropy's middle edge, nominally 0, is a float32 rounding
#   residue whose sign follows T's last bits, so the whole spike at 0 can change bin.)
#   Percentile's searchsorted on such cumulative counts moves by <= 1 bin. Entropy's KL minimum is
#   taken over the same candidate edges, each candidate's counts within a bin: it moved by one
#   candidate (1 bin) at most wherever tried (two nearly equal KL minima could swap further).
#   Clipping to [min, max] (each <= d off) keeps the bound. So endpoints differ by
#   <= HISTOGRAM_BINS_MOVED * w + s + d, and by 0 where d == 0 (same tensors, same edges, counts).
# A dropped run, unmerged histograms or another group size change the bin layout or the cumulative
# counts by far more than one bin, and fail whatever d is.
HISTOGRAM_BINS_MOVED = 1
EPS32 = float(np.finfo(np.float32).eps)


def _inference_perturbation(model_path, images, run_size, workdir) -> dict:
    """Per calibrated tensor, (d = max |x_run - x_16|, its number of values): the tensor computed in
    runs of ``run_size`` images (edgekit) against runs of 16 (the reference), by a session made as
    the calibrators' are."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    from edgekit.quantize.calibration_runs import GROUP

    session = create_calibrator(model_path, None, augmented_model_path=str(workdir / "all_tensors.onnx"),
                                calibrate_method=CalibrationMethod.Entropy).infer_session
    names = [output.name for output in session.get_outputs()]

    def tensors(size):
        runs = [session.run(None, {"input": group[start:start + size]})
                for group in (images[g:g + GROUP] for g in range(0, len(images), GROUP))
                for start in range(0, len(group), size)]
        return [np.concatenate(values).astype(np.float64) for values in zip(*runs)]

    return {name: (float(np.max(np.abs(ours - theirs))), ours.size)
            for name, ours, theirs in zip(names, tensors(run_size), tensors(GROUP))}


def _cumulative_counts(histogram: tuple, values: int, bins: int):
    """Cumulative counts after a first bin of the values ORT dropped (|x| below percentile's first
    edge), on ``bins`` bins: a histogram with fewer gets the same lattice's empty end bins (a merge
    adds floor((T_g - T) / w) + 1 bins, one more where T_g is within d of a multiple of w: on each
    side of entropy's [-T, T], at the top of percentile's |x|). Also returns the edges."""
    hist, edges = histogram[:2]
    missing = bins - len(hist)
    below, above = (missing // 2, missing - missing // 2) if len(histogram) == 5 else (0, missing)
    width, edges = float(edges[1] - edges[0]), np.asarray(edges, dtype=np.float64)
    edges = np.concatenate([edges[0] - width * np.arange(below, 0, -1), edges,
                            edges[-1] + width * np.arange(1, above + 1)])
    assert hist.sum() <= values
    return np.cumsum(np.concatenate([[values - hist.sum()], np.pad(hist, (below, above))])), edges


def _histogram_tolerance(ours: tuple, theirs: tuple, d: float, values: int, groups: int, label: str) -> float:
    """Checks one tensor's two histograms as exactly as d allows; returns the range tolerance."""
    from edgekit.quantize.ort import ENTROPY_BINS

    num_bins = ENTROPY_BINS["num_bins"]  # PERCENTILE's too
    bins = max(len(ours[0]), len(theirs[0]))
    assert abs(len(ours[0]) - len(theirs[0])) <= 2 * (groups - 1), \
        f"{label}: {len(ours[0])} bins, reference {len(theirs[0])}"
    (counts, edges), (ref_counts, ref_edges) = (_cumulative_counts(h, values, bins) for h in (ours, theirs))
    width = float(ref_edges[1] - ref_edges[0])
    moved = HISTOGRAM_BINS_MOVED if d > 0 else 0
    slack = 2 * d * bins / num_bins + 4 * EPS32 * float(np.abs(ref_edges).max()) if d > 0 else 0.0
    assert d + slack < width, f"{label}: inference differs by {d:g}, more than a bin ({width:g}) allows"
    assert np.abs(edges - ref_edges).max() <= slack, f"{label}: bin edges moved by more than {slack:g}"
    for low, high in ((ref_counts, counts), (counts, ref_counts)):
        assert np.all(high[moved:] >= low[:len(low) - moved]), f"{label}: counts moved by more than {moved} bins"
    return moved * width + slack + d


@pytest.mark.parametrize("method", ["minmax", "moving-average", "percentile", "entropy"])
@pytest.mark.parametrize("budget", [None, 1])  # None: the default run size; 1 byte: one image per run
def test_batched_ranges_equal_ort_calibrators(fp32_onnx, trained_tiny, tmp_path, monkeypatch, method, budget):
    """Reducing statistics per run (and splitting a 16-image group into smaller runs) changes nothing
    but what ORT's inference itself changes with the run size (see the derivation above)."""
    import onnxruntime.quantization.calibrate as ort_calibrate

    from edgekit.quantize import calibration_runs

    original, run_sizes, calibrators = calibration_runs.images_per_run, [], []
    real_create = ort_calibrate.create_calibrator

    def sized(fixed, image_bytes):
        run_sizes.append(original(fixed, image_bytes, **({} if budget is None else {"budget": budget})))
        return run_sizes[-1]

    def create(*args, **kwargs):  # keeps edgekit's and the reference's calibrators, for their histograms
        calibrators.append(real_create(*args, **kwargs))
        return calibrators[-1]

    monkeypatch.setattr("edgekit.quantize.ort.images_per_run", sized)
    monkeypatch.setattr(ort_calibrate, "create_calibrator", create)
    images = trained_tiny["x_val"][:40]  # two full groups and a partial one
    groups = -(-len(images) // calibration_runs.GROUP)
    _, ranges = calibration_ranges(fp32_onnx, images, method, tmp_path)
    reference = _ort_reference_ranges(fp32_onnx, images, method, tmp_path)
    ours, theirs = calibrators
    perturbation = _inference_perturbation(fp32_onnx, images, run_sizes[0], tmp_path)
    assert set(ranges.keys()) == set(reference.keys()) and len(ranges.keys()) > 0
    for name in reference.keys():
        label, (d, values) = f"{method}: {name}", perturbation[name]
        got = np.asarray(ranges[name].range_value, dtype=np.float64)
        expected = np.asarray(reference[name].range_value, dtype=np.float64)
        if method in ("minmax", "moving-average"):
            averaged = method == "moving-average" and d > 0
            tolerance = d + (3 * EPS32 * (groups - 1) * np.abs(expected).max() if averaged else 0.0)
        else:
            tolerance = _histogram_tolerance(ours.collector.histogram_dict[name],
                                             theirs.collector.histogram_dict[name], d, values, groups, label)
        if method == "entropy" and d > 0 and not np.allclose(got, expected, rtol=0, atol=tolerance):
            # The entropy range is an argmin over candidate thresholds: histograms that differ by
            # the inference's own perturbation may tip a near-tie to another candidate, a jump
            # no range tolerance describes. What must hold: judged on the reference histogram, our
            # choice is within twice the largest pointwise change of the KL curve of the best.
            _assert_entropy_choice_near_optimal(ours, theirs, name, label)
            continue
        np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance, err_msg=label)


def _kl_curve(calibrator, name: str) -> np.ndarray:
    """ORT's own get_entropy_threshold on one tensor's histogram, keeping every candidate's KL divergence
    (the array it takes the argmin of) instead of only the winner."""
    import onnxruntime.quantization.calibrate as ort_calibrate

    from edgekit.quantize.ort import ENTROPY_BINS

    seen = {}

    class Recorder:
        def __getattr__(self, attribute):
            return getattr(np, attribute)

        @staticmethod
        def argmin(values, *args, **kwargs):
            seen["curve"] = np.array(values, dtype=np.float64)
            return np.argmin(values, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ort_calibrate, "np", Recorder())
        calibrator.collector.get_entropy_threshold(calibrator.collector.histogram_dict[name],
                                                   ENTROPY_BINS["num_quantized_bins"])
    return seen["curve"]


def _assert_entropy_choice_near_optimal(ours, theirs, name: str, label: str) -> None:
    mine, reference = _kl_curve(ours, name), _kl_curve(theirs, name)
    assert mine.shape == reference.shape, f"{label}: {mine.size} candidate thresholds, reference {reference.size}"
    finite = np.isfinite(mine) & np.isfinite(reference)
    change = float(np.abs(mine[finite] - reference[finite]).max())
    chosen = int(np.argmin(mine))
    assert np.isfinite(reference[chosen]) and reference[chosen] <= reference[finite].min() + 2 * change + 1e-12, \
        f"{label}: our threshold's KL {reference[chosen]:g} vs the best {reference[finite].min():g} (curves move {change:g})"


def test_run_size_obeys_fixed_batch_and_budget():
    from edgekit.quantize.calibration_runs import GROUP, images_per_run

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
