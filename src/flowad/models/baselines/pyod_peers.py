"""Peer detectors from PyOD (Zhao et al., "PyOD: A Python Toolbox for Scalable Outlier
Detection", JMLR 2019) on the flowad contract, for side-by-side benchmarks.

PyOD is optional (``pip install flowad[bench]``); :func:`available_peers` lists nothing without it.
Each adapter robust-standardises the columns like the other baselines, fits the PyOD model and
flips its outlier score (higher = more anomalous in PyOD) into ``score_samples`` (higher = more
normal). The threshold and p-values are calibrated like every flowad detector's
(:mod:`flowad.core.calibration`). Peer models cannot be saved by :mod:`flowad.io` (they would need
pickle): they are for benchmarks.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

from flowad.core.estimator import BaseDetector
from flowad.core.preprocessing import TabularScaler

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
    "pyod_inne": ("pyod.models.inne", "INNE", {}, True),
    "pyod_loda": ("pyod.models.loda", "LODA", {}, True),
    "pyod_cblof": ("pyod.models.cblof", "CBLOF", {}, True),
    "pyod_pca": ("pyod.models.pca", "PCA", {}, True),
    "pyod_mcd": ("pyod.models.mcd", "MCD", {}, True),
    "pyod_kde": ("pyod.models.kde", "KDE", {}, False),
    "pyod_dif": ("pyod.models.dif", "DIF", {}, True),
}


#: Widest table ``pyod_mcd`` is fitted on.
MCD_MAX_FEATURES = 200


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
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: ``"auto"``, ``"cross"`` or ``"split"`` (:mod:`flowad.core.calibration`).
        random_state: Seed, for the PyOD models that take one.
    """

    def __init__(self, model: str = "pyod_ecod", *, params: dict | None = None, contamination="auto",
                 calibration="auto", random_state=None) -> None:
        self.model = model
        self.params = params
        self.contamination = contamination
        self.calibration = calibration
        self.random_state = random_state

    def _make(self, n_features: int):
        if self.model not in PEERS:
            raise ValueError(f"model must be one of {list(PEERS)}, got {self.model!r}")
        if not pyod_installed():
            raise ImportError("PyOD is not installed: pip install 'flowad[bench]'")
        module, name, fixed, seeded = PEERS[self.model]
        if name == "MCD" and n_features > MCD_MAX_FEATURES:  # its C-steps took 50 min per fit at 1,555 columns
            raise ValueError(f"pyod_mcd is refused for {n_features} columns (at most {MCD_MAX_FEATURES}): the minimum "
                             f"covariance determinant needs far more rows than columns and hours beyond that")
        kwargs = {**fixed, **(self.params or {})}
        if seeded:
            kwargs.setdefault("random_state", int(check_random_state(self.random_state).randint(2**31 - 1)))
        if name == "DeepSVDD":
            kwargs["n_features"] = n_features
        return getattr(importlib.import_module(module), name)(**kwargs)

    def _fit_model(self, X: np.ndarray, labels: np.ndarray, callback=None) -> None:
        self.scaler_ = TabularScaler.fit(X, dequantize=False, tail_bound=100.0)
        Xs = self.scaler_.model_input(X)
        estimator = self._make(Xs.shape[1])
        # PyOD's deep models seed torch's global generator; keep the caller's state intact.
        with torch.random.fork_rng():
            estimator.fit(Xs)
        self.estimator_ = estimator

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        """Minus PyOD's outlier score per row, shape ``(N,)``; higher means more normal."""
        with torch.random.fork_rng():
            scores = self.estimator_.decision_function(self.scaler_.model_input(X))
        return -np.asarray(scores, dtype=np.float64)
