"""Classic detectors on the flowad contract: scikit-learn adapters, PyOD peers and DTE-NP."""

from flowad.models.baselines.dte_np import DTENPDetector
from flowad.models.baselines.pyod_peers import PEERS, PyODDetector, available_peers
from flowad.models.baselines.sklearn_adapters import (
    EllipticEnvelopeDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
    SklearnAdapter,
)

__all__ = [
    "DTENPDetector",
    "EllipticEnvelopeDetector",
    "IsolationForestDetector",
    "LOFDetector",
    "OneClassSVMDetector",
    "PEERS",
    "PyODDetector",
    "SklearnAdapter",
    "available_peers",
]
