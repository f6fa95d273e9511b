"""Peer detectors from PyOD (Zhao et al., "PyOD: A Python Toolbox for Scalable Outlier
Detection", JMLR 2019) on the flowad contract, for side-by-side benchmarks.

PyOD is optional (``pip install flowad[bench]``); :func:`available_peers` lists nothing without it.
Each adapter robust-standardises the columns like the other baselines, fits the PyOD model and
flips its outlier score (higher = more anomalous in PyOD) into ``score_samples`` (higher = more
normal). The threshold is the ``contamination`` quantile of the training scores. Peer models are
not saved by :mod:`flowad.io` (they would need pickle).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from flowad.detectors.base import BaseDetector, quantile_offset
from flowad.detectors.preprocessing import TabularScaler

__all__ = ["PEERS", "PyODDetector", "available_peers", "pyod_installed"]

#: Registry name -> (PyOD module, class, fixed keyword arguments, whether it takes random_state).
PEERS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "pyod_ecod": ("pyod.models.ecod", "ECOD", {}, False),
    "pyod_copod": ("pyod.models.copod", "COPOD", {}, False),
    "pyod_knn": ("pyod.models.knn", "KNN", {}, False),
    "pyod_hbos": ("pyod.models.hbos", "HBOS", {}, False),
    "pyod_iforest": ("pyod.models.iforest", "IForest", {}, True),
    "pyod_ae": ("pyod.models.auto_encoder", "AutoEncoder", {"verbose": 0}, True),
    "pyod_deepsvdd": ("pyod.models.deep_svdd", "DeepSVDD", {"verbose": 0}, True),
}


def pyod_installed() -> bool:
    """Whether PyOD can be imported."""
    return importlib.util.find_spec("pyod") is not None


def available_peers() -> list[str]:
    """Registry names of the PyOD peers (empty when PyOD is not installed)."""
    return list(PEERS) if pyod_installed() else []


class PyODDetector(BaseDetector):
    """Any PyOD detector of :data:`PEERS`, by registry name.

    Args:
        model: A key of :data:`PEERS` (``"pyod_ecod"``, ``"pyod_knn"``, ...).
        params: Extra keyword arguments for the PyOD class.
        contamination: ``"auto"`` (1%) or a float in (0, 0.5]; sets ``offset_``.
        random_state: Seed, for the PyOD models that take one.
    """

    def __init__(self, model: str = "pyod_ecod", *, params: dict | None = None, contamination="auto",
                 random_state=None) -> None:
        self.model = model
        self.params = params
        self.contamination = contamination
        self.random_state = random_state

    def _make(self, n_features: int):
        if self.model not in PEERS:
            raise ValueError(f"model must be one of {list(PEERS)}, got {self.model!r}")
        if not pyod_installed():
            raise ImportError("PyOD is not installed: pip install 'flowad[bench]'")
        module, name, fixed, seeded = PEERS[self.model]
        kwargs = {**fixed, **(self.params or {})}
        if seeded:
            kwargs.setdefault("random_state", int(check_random_state(self.random_state).randint(2**31 - 1)))
        if name == "DeepSVDD":
            kwargs["n_features"] = n_features
        return getattr(importlib.import_module(module), name)(**kwargs)

    def fit(self, X, y=None) -> PyODDetector:
        """Fit on training rows ``X`` of shape ``(N, D)``; ``y`` is ignored. Returns ``self``."""
        self._validate_params()
        X = self._validate_fit_input(X, min_samples=2)
        self.scaler_ = TabularScaler.fit(X, dequantize=False)
        Xs = self.scaler_.model_input(X)
        estimator = self._make(Xs.shape[1])
        # PyOD's deep models seed torch's global generator; keep the caller's state intact.
        with torch.random.fork_rng():
            estimator.fit(Xs)
        self.estimator_ = estimator
        self.offset_ = quantile_offset(-np.asarray(estimator.decision_scores_, dtype=np.float64),
                                       self.contamination)
        return self


    def score_samples(self, X) -> np.ndarray:
        """Minus PyOD's outlier score per row, shape ``(N,)``; higher means more normal."""
        X = self._validate_score_input(X)
        with torch.random.fork_rng():
            scores = self.estimator_.decision_function(self.scaler_.model_input(X))
        return -np.asarray(scores, dtype=np.float64)
