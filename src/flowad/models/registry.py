"""Short names for every detector, so the CLI and the benchmark can look them up."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from flowad.core.estimator import BaseDetector
from flowad.models.baselines.dte_np import DTENPDetector
from flowad.models.baselines.pyod_peers import PEERS, PyODDetector, available_peers
from flowad.models.baselines.sklearn_adapters import (
    EllipticEnvelopeDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
)
from flowad.models.tabular_autoencoder.estimator import AutoencoderDetector
from flowad.models.tabular_flow import FlowDetector, FlowEnsembleDetector

__all__ = ["DETECTORS", "IMAGE_MODELS", "REFERENCES", "available_detectors", "available_peers", "image_model",
           "make_detector"]

#: Short name -> factory taking keyword hyper-parameters.
DETECTORS: dict[str, Callable[..., BaseDetector]] = {
    "maf": partial(FlowDetector, "maf"),
    # the MAF's log-likelihood plus a k-nearest-neighbour log-density over its inputs
    "maf_hybrid": partial(FlowDetector, "maf", score_type="hybrid"),
    "realnvp": partial(FlowDetector, "realnvp"),
    "nsf": partial(FlowDetector, "nsf"),
    # three MAFs, each fitted to its own split of the data (bagging)
    "maf_ensemble": partial(FlowEnsembleDetector, "maf", n_flows=3),
    "iforest": IsolationForestDetector,
    "ocsvm": OneClassSVMDetector,
    "elliptic": EllipticEnvelopeDetector,
    "lof": LOFDetector,
    "ae": AutoencoderDetector,
}


#: Reference detectors from other papers, by short name: for benchmarks (no model files), beside
#: the PyOD peers.
REFERENCES: dict[str, Callable[..., BaseDetector]] = {
    "dte_np": DTENPDetector,  # Livernoche et al., ICLR 2024
}


def available_detectors() -> list[str]:
    """flowad's own detectors, in registry order (PyOD peers: :func:`available_peers`)."""
    return list(DETECTORS)


def make_detector(name: str, **params) -> BaseDetector:
    """A new, unfitted detector by short name.

    Args:
        name: A key of :data:`DETECTORS` or :data:`REFERENCES` (``"dte_np"``), or a PyOD peer
            (``"pyod_ecod"``, ...; needs PyOD).
        **params: Hyper-parameters for its constructor (invalid ones raise ``ValueError``).
    """
    if name in PEERS:
        if name not in available_peers():
            raise ValueError(f"detector {name!r} needs PyOD: pip install 'flowad[bench]'")
        return PyODDetector(name, **params)
    if name not in DETECTORS and name not in REFERENCES:
        raise ValueError(f"detector must be one of {available_detectors() + list(REFERENCES) + available_peers()}, "
                         f"got {name!r}")
    factory = DETECTORS.get(name) or REFERENCES[name]
    try:
        return factory(**params)
    except TypeError as err:
        raise ValueError(f"invalid parameters for detector {name!r}: {err}") from err


#: Image detectors by short name (``flowad image fit --model``) -> (module, class), imported on use.
IMAGE_MODELS: dict[str, tuple[str, str]] = {
    "fastflow": ("flowad.models.fastflow", "FastFlowDetector"),
    "patchcore": ("flowad.models.patchcore", "PatchCoreDetector"),
    "patchflow": ("flowad.models.patchflow", "PatchFlowDetector"),
    "autoencoder": ("flowad.models.conv_autoencoder", "ConvAutoencoderDetector"),
}


def image_model(name: str, **params):
    """A new, unfitted image detector by short name (a key of :data:`IMAGE_MODELS`)."""
    import importlib

    if name not in IMAGE_MODELS:
        raise ValueError(f"image model must be one of {list(IMAGE_MODELS)}, got {name!r}")
    module, cls = IMAGE_MODELS[name]
    try:
        return getattr(importlib.import_module(module), cls)(**params)
    except TypeError as err:
        raise ValueError(f"invalid parameters for image model {name!r}: {err}") from err
