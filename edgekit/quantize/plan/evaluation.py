"""The images the planner judges accuracy on, kept apart from the images it calibrates on.

With ``--val DIR`` (labelled, held out) accuracy is top-1 against the labels; any image of the
calibration folder that is also in ``--val`` (same file or same bytes) is dropped from calibration.
Without labels, a share of the calibration folder is set aside before calibration images are drawn,
and accuracy is top-1 agreement with the fp32 model on those never-calibrated images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.core.errors import EdgekitError
from edgekit.data import ImageSet, labelled_images

HELD_OUT_SHARE = 0.2  # of the calibration folder, without --val
MAX_HELD_OUT = 1000
MIN_HELD_OUT = 20


@dataclass(frozen=True)
class PlanImages:
    """Which files calibrate and which judge. ``labels`` are class indices of ``judge`` or None."""

    calibrate: ImageSet
    judge: ImageSet
    labelled: bool
    record: dict


def split_for_planning(available: ImageSet, *, calib_source, calib_size: int, val, val_size: int) -> PlanImages:
    """Disjoint calibration and judging sets (checked before any work: bad folders fail here)."""
    if val is not None:
        judge = labelled_images(val, purpose="--val").subset(val_size, seed=0)
        judged = judge.identities()
        # Same files first (cheap), then byte-identical copies among the sampled calibration images.
        outside = available.without(judged, by_content=False)
        sampled = outside.subset(calib_size, seed=0)
        calibrate = sampled.without(judged)
        dropped = len(available) - len(outside) + len(sampled) - len(calibrate)
        if not len(calibrate):
            raise EdgekitError(f"--calib {calib_source}: every image is also in --val {val}; calibrate on other images")
        return PlanImages(calibrate, judge, True, {
            "source": str(val), "images": len(judge), "labelled": True,
            "selection": "all" if val_size >= len(judge) else f"random sample of {val_size}, seed 0",
            "calibration_images_also_in_val_dropped": dropped, "sha256": judge.content_sha256()})
    held = min(MAX_HELD_OUT, int(len(available) * HELD_OUT_SHARE))
    if held < MIN_HELD_OUT:
        need = int(np.ceil(MIN_HELD_OUT / HELD_OUT_SHARE))
        raise EdgekitError(f"--max-drop without --val judges int8 on calibration images held out from calibrating: "
                           f"--calib {calib_source} has {len(available)} images, at least {need} are needed "
                           "(or pass labelled held-out images with --val DIR)")
    judge = available.subset(held, seed=1)
    judged = judge.identities()
    calibrate = available.without(judged, by_content=False).subset(calib_size, seed=0).without(judged)
    return PlanImages(calibrate, judge, False, {
        "source": str(calib_source), "images": len(judge), "labelled": False,
        "selection": f"{held} images of --calib (random, seed 1) set aside before calibration images were drawn",
        "sha256": judge.content_sha256()})


def top1_percent(logits: np.ndarray, reference: np.ndarray) -> float:
    """Top-1 of ``logits`` against labels (1-D) or against a reference model's logits (2-D), in percent."""
    truth = reference if reference.ndim == 1 else reference.argmax(1)
    return float(100.0 * np.mean(logits.argmax(1) == truth))
