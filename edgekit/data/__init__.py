"""Image folders for calibration and evaluation, preprocessed exactly as the model expects."""

from edgekit.data.folders import ImageSet, find_images, labelled_images, split_per_class
from edgekit.data.preprocessing import Preprocessing

__all__ = ["ImageSet", "Preprocessing", "find_images", "labelled_images", "split_per_class"]
