"""PatchCore: a coreset memory bank of normal patch features, nearest-neighbour anomaly maps."""

from flowad.models.patchcore.estimator import PatchCoreDetector

__all__ = ["PatchCoreDetector"]
