"""User-facing detectors (NumPy in, NumPy out), all following the estimator contract in ``base``."""

from flowad.detectors.base import BaseDetector
from flowad.detectors.flow import FlowDetector

__all__ = ["BaseDetector", "FlowDetector"]
