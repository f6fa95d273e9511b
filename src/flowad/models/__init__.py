"""Every flowad model, one package each (estimator, scoring graph, loss, maps where it has them).

Tabular detectors are imported with this package; image models on first use, so that tables
never load what images need.

Example:
    >>> from flowad.models import make_detector
    >>> make_detector("iforest", n_estimators=50)
    IsolationForestDetector(n_estimators=50)
"""

from __future__ import annotations

import importlib

from flowad.models.baselines import (
    EllipticEnvelopeDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
    PyODDetector,
)
from flowad.models.registry import DETECTORS, available_detectors, available_peers, make_detector
from flowad.models.tabular_autoencoder import AutoencoderDetector
from flowad.models.tabular_flow import (
    FlowDetector,
    FlowEnsembleDetector,
    FlowOptions,
    FlowRatioClassifier,
    TwoClassFlowDetector,
)

#: Image models, imported when first named.
_LAZY = {
    "FastFlowDetector": "flowad.models.fastflow",
    "PatchFlowDetector": "flowad.models.patchflow",
    "PatchCoreDetector": "flowad.models.patchcore",
    "ConvAutoencoderDetector": "flowad.models.conv_autoencoder",
    "UNet": "flowad.models.unet",
    "UNetSegmenter": "flowad.models.unet",
    "GlowDensity": "flowad.models.glow_density",
    "GlowConfig": "flowad.models.glow_density",
}

__all__ = [
    "DETECTORS",
    "AutoencoderDetector",
    "ConvAutoencoderDetector",
    "EllipticEnvelopeDetector",
    "FastFlowDetector",
    "FlowDetector",
    "FlowEnsembleDetector",
    "FlowOptions",
    "GlowConfig",
    "GlowDensity",
    "IsolationForestDetector",
    "LOFDetector",
    "OneClassSVMDetector",
    "PatchCoreDetector",
    "PatchFlowDetector",
    "PyODDetector",
    "FlowRatioClassifier",
    "TwoClassFlowDetector",
    "UNet",
    "UNetSegmenter",
    "available_detectors",
    "available_peers",
    "make_detector",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flowad.models' has no attribute {name!r}")
