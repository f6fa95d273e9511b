"""The estimator contract every flowad detector follows (scikit-learn's, exactly).

``score_samples(X)`` is higher for more normal rows; ``decision_function(X)`` subtracts the
threshold ``offset_`` learned in ``fit``; ``predict(X)`` gives +1 (normal) or -1 (anomaly).
"""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["AUTO_CONTAMINATION", "BaseDetector", "contamination_value", "quantile_offset"]

#: The share of training normals flagged when ``contamination="auto"``.
AUTO_CONTAMINATION = 0.01


def contamination_value(contamination: float | str) -> float:
    """The numeric share behind a ``contamination`` parameter (``"auto"`` or a float in (0, 0.5])."""
    if isinstance(contamination, str):
        if contamination != "auto":
            raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
        return AUTO_CONTAMINATION
    value = float(contamination)
    if not 0.0 < value <= 0.5:
        raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
    return value


def quantile_offset(train_scores: np.ndarray, contamination: float | str) -> float:
    """Threshold that flags a ``contamination`` share of ``train_scores`` (shape ``(N,)``)."""
    return float(np.quantile(np.asarray(train_scores, dtype=np.float64), contamination_value(contamination)))


class BaseDetector(OutlierMixin, BaseEstimator):
    """Shared thresholding and input checks; subclasses implement ``fit`` and ``score_samples``.

    Subclasses set ``offset_`` in ``fit`` (usually with :func:`quantile_offset`).
    """

    _parameter_constraints: dict = {
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
    }

    def _validate_fit_input(self, X, min_samples: int = 1) -> np.ndarray:
        """Check a training matrix and record ``n_features_in_`` (and feature names).

        Args:
            X: Array-like of shape ``(N, D)``, finite numbers.
            min_samples: Fewest rows accepted.

        Returns:
            ``X`` as a float64 array of shape ``(N, D)``.
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=min_samples, reset=True)
        return X

    def _validate_score_input(self, X) -> np.ndarray:
        """Check a scoring matrix against the fitted feature count; returns float64 ``(N, D)``."""
        check_is_fitted(self, "offset_")
        return validate_data(self, X, dtype=np.float64, reset=False)

    def score_samples(self, X) -> np.ndarray:  # pragma: no cover - abstract
        """Normality score per row, shape ``(N,)``; higher means more normal."""
        raise NotImplementedError

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``, shape ``(N,)``: negative for predicted anomalies."""
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for rows predicted normal, -1 for predicted anomalies; shape ``(N,)``."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
