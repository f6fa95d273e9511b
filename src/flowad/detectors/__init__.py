"""User-facing detectors (NumPy in, NumPy out), all following the estimator contract in ``base``."""

from flowad.detectors.autoencoder import AutoencoderDetector
from flowad.detectors.base import BaseDetector
from flowad.detectors.baselines import (
    EllipticEnvelopeDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
)
from flowad.detectors.flow import FlowDetector
from flowad.detectors.peers import PyODDetector
from flowad.detectors.registry import DETECTORS, available_detectors, available_peers, make_detector

__all__ = [
    "DETECTORS",
    "AutoencoderDetector",
    "BaseDetector",
    "EllipticEnvelopeDetector",
    "FlowDetector",
    "IsolationForestDetector",
    "LOFDetector",
    "OneClassSVMDetector",
    "PyODDetector",
    "available_detectors",
    "available_peers",
    "make_detector",
]
