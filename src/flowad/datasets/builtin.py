"""Data sets that ship with the dependencies (no download)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer

__all__ = ["load_breast_cancer_anomaly"]


def load_breast_cancer_anomaly(
    anomaly_share: float = 0.1, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Wisconsin diagnostic breast cancer (scikit-learn) as an anomaly-detection set, ODDS-style.

    The 357 benign tumours are the normal rows; a random subset of the 212 malignant ones is kept
    as anomalies so that they make up ``anomaly_share`` of the set (as ODDS does for WDBC).

    Returns:
        ``X`` of shape ``(N, 30)``, ``y`` of shape ``(N,)`` (1 = malignant) and the 30 feature names.
    """
    if not 0.0 < anomaly_share < 1.0:
        raise ValueError(f"anomaly_share must be in (0, 1), got {anomaly_share!r}")
    data = load_breast_cancer()
    anomalous = data.target == 0  # scikit-learn codes malignant as 0
    normal_idx = np.flatnonzero(~anomalous)
    n_anomalies = int(round(anomaly_share / (1 - anomaly_share) * len(normal_idx)))
    rng = np.random.default_rng(random_state)
    anomaly_idx = rng.choice(np.flatnonzero(anomalous), size=min(n_anomalies, anomalous.sum()), replace=False)
    idx = np.concatenate([normal_idx, np.sort(anomaly_idx)])
    return data.data[idx].astype(np.float64), anomalous[idx].astype(np.int64), list(data.feature_names)
