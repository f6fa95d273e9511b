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

__all__ = [
    "AUTO_CONTAMINATION",
    "BaseDetector",
    "contamination_value",
    "finite_scores",
    "prefixed",
    "quantile_offset",
    "unprefixed",
]

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


def finite_scores(values) -> np.ndarray:
    """Scores as float64 with NaN and -inf (e.g. densities too small for float64) set to the lowest
    finite float and +inf to the highest, so that no score is ever NaN."""
    info = np.finfo(np.float64)
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=info.min, neginf=info.min, posinf=info.max)


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"a": x}`` -> ``{"<prefix>.a": x}`` (to keep groups of arrays apart in a model file)."""
    return {f"{prefix}.{k}": np.asarray(v) for k, v in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of :func:`prefixed`: the arrays under ``prefix``, with the prefix removed."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in arrays.items() if k.startswith(head)}


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

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Fitted state for :func:`flowad.io.save`: JSON-able values and named arrays."""
        state = {"offset_": float(self.offset_), "n_features_in_": int(self.n_features_in_)}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(name) for name in self.feature_names_in_]
        return state, {}

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_save_state` returned, on a fresh instance with the same parameters."""
        self.offset_ = float(state["offset_"])
        self.n_features_in_ = int(state["n_features_in_"])
        if state.get("feature_names_in_") is not None:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
