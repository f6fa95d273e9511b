"""PatchFlow: a Glow on image patches, scored by bits per dimension per patch."""

from flowad.models.patchflow.estimator import PatchFlowDetector

__all__ = ["PatchFlowDetector"]
