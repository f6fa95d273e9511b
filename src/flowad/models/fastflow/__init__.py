"""FastFlow: 2D normalizing flows over a frozen backbone"s feature maps, with anomaly maps."""

from flowad.models.fastflow.estimator import FastFlowDetector

__all__ = ["FastFlowDetector"]
