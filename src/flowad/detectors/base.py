"""The estimator contract lives in :mod:`flowad.core.estimator`; this module keeps the old import path."""

from __future__ import annotations

import numpy as np

from flowad.core.estimator import (
    AUTO_CONTAMINATION,
    BaseDetector,
    contamination_value,
    finite_scores,
    prefixed,
    unprefixed,
)

__all__ = [
    "AUTO_CONTAMINATION",
    "BaseDetector",
    "contamination_value",
    "finite_scores",
    "prefixed",
    "quantile_offset",
    "unprefixed",
]


def quantile_offset(train_scores: np.ndarray, contamination: float | str) -> float:
    """Threshold that flags a ``contamination`` share of ``train_scores`` (shape ``(N,)``)."""
    return float(np.quantile(np.asarray(train_scores, dtype=np.float64), contamination_value(contamination)))
