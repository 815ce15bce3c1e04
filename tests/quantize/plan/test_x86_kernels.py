"""The cpu profile's decisions about x86 int8 kernel paths, forced for each ISA level on any machine."""

import json

import pytest

from edgekit.artifact.plan_records import PlanCandidate
from edgekit.quantize.plan.x86_kernels import EIGHT_BIT, ORT_DEFAULT, SEVEN_BIT, kernel_paths_to_try, variant_base
from tests.conftest import build_tiny


def test_the_other_weight_width_is_tried_on_every_x86_cpu_and_ort_defaults_only_where_they_saturate():
    assert kernel_paths_to_try(saturates=False, base_bits=7) == (EIGHT_BIT,)
    assert kernel_paths_to_try(saturates=False, base_bits=8) == (SEVEN_BIT,)
    assert kernel_paths_to_try(saturates=True, base_bits=7) == (EIGHT_BIT, ORT_DEFAULT)
    assert kernel_paths_to_try(saturates=True, base_bits=8) == (SEVEN_BIT, ORT_DEFAULT)


def _c(name, drop, p50, **settings):
    return PlanCandidate(name, "int8", {"calibration": "minmax", "placement": "all", "weight_bits": 8, **settings},
                         accuracy=90 - drop, drop=drop, p50_ms=p50)


def test_the_variants_start_from_the_plan_that_would_ship():
    candidates = [PlanCandidate("fp32", "fp32", {}, accuracy=90, drop=0, p50_ms=1.0),
                  _c("fixed", 2.0, 0.3), _c("ma", 0.4, 0.5), _c("entropy", 0.1, 0.6),
                  _c("ma+7bit", 0.3, 0.4, weight_bits=7, kernel_variant="7bit"),
                  _c("ma+ort-default-kernels", 0.3, 0.1, x86_int8_kernels="ort-default", kernel_variant="ort-default")]
    assert variant_base(candidates, max_drop=0.5, latency_measured=True).name == "ma"  # fastest fitting, not a variant
    assert variant_base(candidates, max_drop=0.5, latency_measured=False).name == "entropy"  # most accurate fitting
    assert variant_base(candidates, max_drop=0.05, latency_measured=True).name == "entropy"  # none fits: most accurate
    assert variant_base(candidates[:1], max_drop=1, latency_measured=True) is None


@pytest.mark.parametrize("cpu", ["avx2", "avx512_vnni"])
def test_the_planner_measures_this_cpus_kernel_paths_and_ships_what_it_judged(pretend_cpu, cpu, pattern_data,
                                                                              trained_tiny, tmp_path):
    """The parent's CPU is pretended; latency workers run on the real one (their numbers are only ranked)."""
    pretend_cpu(cpu)
    folder = build_tiny("cpu", tmp_path / "art", pattern_data, trained_tiny, calib_size=32, max_drop=5,
                        val=pattern_data["val"], val_size=40)
    manifest = json.loads((folder / "manifest.json").read_text())
    plan = manifest["quantization_plan"]
    names = [c["name"] for c in plan["candidates"]]
    # The cpu profile's plans have 7-bit weights; the 8-bit one is measured beside them, and on a
    # CPU without VNNI the 8-bit one with ORT's saturating default kernels too.
    assert all(c["settings"]["weight_bits"] == 7 for c in plan["candidates"] if "kernel_variant" not in c["settings"]
               and c["precision"] == "int8" and c["status"] == "tried")
    eight = next(c for c in plan["candidates"] if c["name"].endswith("+8bit"))
    assert eight["settings"]["weight_bits"] == 8 and eight["settings"]["reduce_range"] is False
    assert any(name.endswith("+8bit+ort-default-kernels") for name in names) is (cpu == "avx2")
    chosen = next(c for c in plan["candidates"] if c["name"] == plan["chosen"])
    int8 = [m for m in manifest["models"] if m["runtime"] == "onnxruntime" and m["precision"] == "int8"]
    if chosen["precision"] == "int8":  # the shipped entry asks for the kernels its plan was judged with
        assert int8[0]["x86_int8_kernels"] == chosen["settings"].get("x86_int8_kernels", "exact")
        assert manifest["quantization"]["weight_bits"] == chosen["settings"]["weight_bits"]
    assert manifest["build_host"]["isa_level"] == cpu
