"""Image folders for calibration and evaluation, preprocessed exactly as the model expects."""

from edgekit.data.folders import ImageSet, find_images, labelled_images
from edgekit.data.preprocessing import Preprocessing

__all__ = ["ImageSet", "Preprocessing", "find_images", "labelled_images"]
