"""flowad: anomaly and rare-event detection with normalizing flows.

Example:
    >>> import numpy as np
    >>> import flowad
    >>> X = np.random.default_rng(0).normal(size=(300, 3))
    >>> detector = flowad.IsolationForestDetector(random_state=0).fit(X)
    >>> detector.score_table(X[:2]).columns.tolist()
    ['row', 'score', 'p_value', 'is_anomaly']
"""

from flowad import io
from flowad._version import __version__
from flowad.core.table_files import read_table, write_table
from flowad.models import (
    AutoencoderDetector,
    EllipticEnvelopeDetector,
    FlowDetector,
    FlowEnsembleDetector,
    FlowOptions,
    FlowRatioClassifier,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
    TwoClassFlowDetector,
    available_detectors,
    make_detector,
)
from flowad.timeseries import WindowDetector

__all__ = [
    "AutoencoderDetector",
    "EllipticEnvelopeDetector",
    "FlowDetector",
    "FlowEnsembleDetector",
    "FlowOptions",
    "FlowRatioClassifier",
    "IsolationForestDetector",
    "LOFDetector",
    "OneClassSVMDetector",
    "TwoClassFlowDetector",
    "WindowDetector",
    "__version__",
    "available_detectors",
    "io",
    "make_detector",
    "read_table",
    "write_table",
]
