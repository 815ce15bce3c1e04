import numpy as np
import pytest

from edgekit.runtimes.compare import compare_logits


def test_compare_logits_is_scale_free():
    reference = np.array([[10.0, -10.0], [5.0, 0.0]])
    result = compare_logits(reference, reference + 0.01)
    assert result["max_abs_diff"] == pytest.approx(0.01)
    assert result["max_normalised_diff"] == pytest.approx(0.001)
    assert result["top1_agreement"] == 1.0
