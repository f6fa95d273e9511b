"""Shared fixtures: small data and fast detector configurations."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# The ADBench sets at hand on these machines (flowad itself never looks outside what it is given).
os.environ.setdefault("FLOWAD_ADBENCH", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "adbench"))

#: Hyper-parameters that keep each torch detector's fit to a fraction of a second in tests.
FAST = {
    "maf": {"transforms": 2, "hidden_features": (16, 16), "max_epochs": 5},
    "maf_hybrid": {"transforms": 2, "hidden_features": (16, 16), "max_epochs": 5},
    "realnvp": {"transforms": 2, "hidden_features": (16, 16), "max_epochs": 5},
    "nsf": {"transforms": 2, "hidden_features": (16, 16), "max_epochs": 5},
    "maf_ensemble": {"transforms": 2, "hidden_features": (16, 16), "max_epochs": 5},
    "ae": {"hidden_features": (16,), "max_epochs": 5},
}


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray]:
    """Correlated Gaussian training rows ``(400, 4)`` and a test set with 40 clear outliers."""
    rng = np.random.default_rng(0)
    cov = np.array([[1, 0.8, 0, 0], [0.8, 1, 0, 0], [0, 0, 1, -0.5], [0, 0, -0.5, 1]])
    train = rng.multivariate_normal(np.zeros(4), cov, size=400)
    normal = rng.multivariate_normal(np.zeros(4), cov, size=200)
    outliers = rng.uniform(-6, 6, size=(40, 4))
    outliers[:, 0] = np.sign(outliers[:, 0]) * (4 + np.abs(outliers[:, 0]) / 2)
    test = np.vstack([normal, outliers])
    y = np.r_[np.zeros(200, int), np.ones(40, int)]
    return train, (test, y)
