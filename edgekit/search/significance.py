"""95% intervals for search candidates: a bootstrap over the shared validation images and the seeds.

Every candidate of a search is scored on the *same* validation images, so two candidates are
compared image by image (a paired bootstrap): an image both get right or both get wrong adds
nothing to the difference, and the interval of a gain is far narrower than two independent
intervals would suggest. Student-t over seeds would ignore that pairing, and with the 2-5 seeds a
search can afford its interval would be wide and rest on a normality it cannot check.

Each draw resamples the images (the same draw for both candidates: the pairing) and, independently
per candidate, its seeds, so the interval covers both the finite validation set and the training
noise between seeds. With one seed it is the plain paired bootstrap over images. The random
generator is seeded, so an interval is a function of the correctness matrices alone: the local and
Ray executors report identical tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DRAWS = 2000
CHUNK = 250  # draws per batch: a (250 x images) weight matrix bounds the memory at any validation size
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    @property
    def excludes_zero_above(self) -> bool:
        """The whole interval lies above zero: a significant gain."""
        return self.low > 0


def correctness(bits: list[str]) -> np.ndarray:
    """``["0110...", ...]`` (one string per seed) -> a (seeds x images) float matrix."""
    return np.array([[c == "1" for c in row] for row in bits], dtype=np.float64)


def _draws(rng: np.random.Generator, matrices: list[np.ndarray], count: int) -> np.ndarray:
    """(count x candidates) resampled accuracies; the image weights are shared by all candidates."""
    images = matrices[0].shape[1]
    weights = rng.multinomial(images, np.full(images, 1.0 / images), size=count) / images
    columns = []
    for matrix in matrices:
        seeds = matrix.shape[0]
        seed_weights = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=count) / seeds
        per_image = seed_weights @ matrix  # (count x images): each draw's mean over its resampled seeds
        columns.append((weights * per_image).sum(axis=1))
    return np.stack(columns, axis=1)


def _bootstrap(matrices: list[np.ndarray], seed: int) -> np.ndarray:
    shapes = {m.shape[1] for m in matrices}
    if len(shapes) != 1:
        raise ValueError(f"candidates were scored on different validation sets ({sorted(shapes)} images)")
    rng = np.random.default_rng(seed)
    return np.concatenate([_draws(rng, matrices, min(CHUNK, DRAWS - start)) for start in range(0, DRAWS, CHUNK)])


def _interval(mean: float, samples: np.ndarray) -> Interval:
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(mean), float(low), float(high))


def accuracy_interval(matrix: np.ndarray, *, seed: int = 0) -> Interval:
    """Mean accuracy over seeds and images, with its 95% bootstrap interval."""
    return _interval(matrix.mean(), _bootstrap([matrix], seed)[:, 0])


def gain_interval(child: np.ndarray, control: np.ndarray, *, seed: int = 0) -> Interval:
    """Accuracy of ``child`` minus that of ``control`` on the same images, with its paired 95% interval."""
    samples = _bootstrap([child, control], seed)
    return _interval(child.mean() - control.mean(), samples[:, 0] - samples[:, 1])
