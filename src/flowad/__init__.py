"""flowad: anomaly and rare-event detection with normalizing flows."""

from flowad._version import __version__
from flowad.detectors import (
    AutoencoderDetector,
    EllipticEnvelopeDetector,
    FlowDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
    available_detectors,
    make_detector,
)
from flowad.timeseries import WindowDetector

__all__ = [
    "AutoencoderDetector",
    "EllipticEnvelopeDetector",
    "FlowDetector",
    "IsolationForestDetector",
    "LOFDetector",
    "OneClassSVMDetector",
    "WindowDetector",
    "__version__",
    "available_detectors",
    "make_detector",
]
