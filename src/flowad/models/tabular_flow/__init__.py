"""The tabular flow detector: a normalizing flow (MAF, RealNVP, NSF) on table rows."""

from flowad.models.tabular_flow.estimator import FlowDetector

__all__ = ["FlowDetector"]
