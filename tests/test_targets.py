import pytest

from edgekit.errors import EdgekitError
from edgekit.targets import list_targets, load_target


def test_builtin_targets_are_listed_and_valid():
    assert {"cpu", "openvino", "rpi4"} <= set(list_targets())
    for name in list_targets():
        assert load_target(name).threads >= 1


def test_rpi4_is_arm_without_dot_product_and_says_why():
    pi = load_target("rpi4")
    assert (pi.arch, pi.int8_dot_product, pi.quantization.per_channel) == ("aarch64", False, True)
    assert "dot-product" in pi.rationale["int8_expectation"]


def test_unknown_target_names_the_known_ones():
    with pytest.raises(EdgekitError, match="known targets: cpu, openvino, rpi4"):
        load_target("jetson")


def test_user_profile_from_a_toml_file(tmp_path):
    path = tmp_path / "avx2.toml"
    path.write_text('name = "avx2"\ndescription = "AVX2 without VNNI"\narch = "x86_64"\n'
                    'runtime = "onnxruntime"\nthreads = 4\n[quantization]\nbackend = "onnxruntime"\n'
                    'format = "qdq"\nreduce_range = true\n')
    target = load_target(str(path))
    assert target.quantization.reduce_range is True and target.threads == 4


def test_malformed_profile_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\nruntime = "tensorrt"\n')
    with pytest.raises(EdgekitError, match="malformed|runtime"):
        load_target(str(path))
