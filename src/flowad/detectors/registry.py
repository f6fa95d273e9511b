"""Short names for every detector, so the CLI and the benchmark can look them up."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from flowad.detectors.autoencoder import AutoencoderDetector
from flowad.detectors.base import BaseDetector
from flowad.detectors.baselines import (
    EllipticEnvelopeDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
)
from flowad.detectors.flow import FlowDetector
from flowad.detectors.peers import PEERS, PyODDetector, available_peers

__all__ = ["DETECTORS", "available_detectors", "available_peers", "make_detector"]

#: Short name -> factory taking keyword hyper-parameters.
DETECTORS: dict[str, Callable[..., BaseDetector]] = {
    "maf": partial(FlowDetector, "maf"),
    "realnvp": partial(FlowDetector, "realnvp"),
    "nsf": partial(FlowDetector, "nsf"),
    # three MAFs, each fitted to its own split of the data (bagging); docs/results/bench
    "maf_ensemble": partial(FlowDetector, "maf", n_flows=3),
    "iforest": IsolationForestDetector,
    "ocsvm": OneClassSVMDetector,
    "elliptic": EllipticEnvelopeDetector,
    "lof": LOFDetector,
    "ae": AutoencoderDetector,
}


def available_detectors() -> list[str]:
    """flowad's own detectors, in registry order (PyOD peers: :func:`available_peers`)."""
    return list(DETECTORS)


def make_detector(name: str, **params) -> BaseDetector:
    """A new, unfitted detector by short name.

    Args:
        name: A key of :data:`DETECTORS`, or a PyOD peer (``"pyod_ecod"``, ...; needs PyOD).
        **params: Hyper-parameters for its constructor (invalid ones raise ``ValueError``).
    """
    if name in PEERS:
        if name not in available_peers():
            raise ValueError(f"detector {name!r} needs PyOD: pip install 'flowad[bench]'")
        return PyODDetector(name, **params)
    if name not in DETECTORS:
        raise ValueError(f"detector must be one of {available_detectors() + available_peers()}, got {name!r}")
    factory = DETECTORS[name]
    try:
        return factory(**params)
    except TypeError as err:
        raise ValueError(f"invalid parameters for detector {name!r}: {err}") from err
