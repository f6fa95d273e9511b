"""flowad: anomaly and rare-event detection with normalizing flows."""

from flowad._version import __version__
from flowad.detectors import FlowDetector

__all__ = ["FlowDetector", "__version__"]
