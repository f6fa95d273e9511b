"""``WindowDetector``: any flowad detector on sliding windows of a series, scored per point.

Each window of ``window`` points (all ``C`` channels, optionally differenced, standardised per
channel with training statistics) is one row for the wrapped detector, so a density model sees the
joint pattern of every channel over the window: a broken relation between channels (RPM that no
longer follows speed) lowers the likelihood even when each channel alone looks normal. Window
scores go back to points as described in :mod:`flowad.timeseries.windows`.

The threshold ``offset_`` is taken from held-out *time*: the wrapped detector is fitted on the
windows of the first ``1 - validation_fraction`` of the training series, and the point scores of
the rest calibrate the threshold and the p-values (:mod:`flowad.core.calibration`). Overlapping
windows make a random hold-out leak (a held-out window shares all but one point with its
neighbours), a temporal one does not. Neighbouring points are not exchangeable (they share
windows), so the alarm rate follows ``contamination`` only approximately, and only while the series
behaves as it did at the end of training. With ``validation_fraction=0`` the detector is fitted on
the whole series and calibrated on its own training points (optimistic for flexible models).
"""

from __future__ import annotations

import logging
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from flowad.core.calibration import Calibration
from flowad.core.estimator import BaseDetector, contamination_value, prefixed, unprefixed
from flowad.models.registry import make_detector
from flowad.timeseries.windows import (
    POINT_SCORES,
    SeriesScaler,
    check_series,
    window_feature_chunks,
    window_features,
    windows_to_points,
)

__all__ = ["WindowDetector"]

logger = logging.getLogger(__name__)


class WindowDetector(BaseDetector):
    """Anomaly detector for univariate and multivariate series built on sliding windows.

    Args:
        detector: The window model: a registry name (``"maf"``, ``"iforest"``, ``"ocsvm"``,
            ``"elliptic"``, ``"ae"``, ...; see :func:`flowad.make_detector`) or an unfitted flowad
            detector instance (cloned in ``fit``).
        window: Window length in points (>= 2, or >= 3 with differencing).
        stride: Step between window starts, in ``1..window``.
        difference: 0, or 1 to model first differences inside each window.
        standardize: Standardise each channel with its training mean and standard deviation.
        point_score: ``"max"`` (a point takes its most anomalous covering window) or ``"mean"``.
        detector_params: Hyper-parameters for a detector given by name.
        contamination: Share of held-out training points flagged: ``"auto"`` (1%) or (0, 0.5].
        validation_fraction: Share of the training series, at its end, held out for the threshold
            (0: threshold from the training points themselves).
        random_state: Seed passed to a detector given by name when it takes one.

    Attributes:
        detector_: The fitted window model. scaler_: Differencing and per-channel statistics.
        offset_: Threshold on ``score_samples``. n_features_in_: Number of channels ``C``.
        n_train_windows_: Windows the model was fitted on.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "detector": [str, HasMethods(["fit", "score_samples"])],
        "window": [Interval(Integral, 2, None, closed="left")],
        "stride": [Interval(Integral, 1, None, closed="left")],
        "difference": [Interval(Integral, 0, 1, closed="both")],
        "standardize": ["boolean"],
        "point_score": [StrOptions(set(POINT_SCORES))],
        "detector_params": [dict, None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, detector: str | BaseEstimator = "maf", *, window: int = 16, stride: int = 1,
                 difference: int = 0, standardize: bool = True, point_score: str = "max",
                 detector_params: dict | None = None, contamination: float | str = "auto",
                 validation_fraction: float = 0.2, random_state: int | None = None) -> None:
        self.detector = detector
        self.window = window
        self.stride = stride
        self.difference = difference
        self.standardize = standardize
        self.point_score = point_score
        self.detector_params = detector_params
        self.contamination = contamination
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    # ----------------------------------------------------------------- set-up
    def _check_params(self) -> None:
        try:
            self._validate_params()
        except Exception as error:  # sklearn's InvalidParameterError is a ValueError; keep one type
            raise ValueError(str(error)) from None
        if self.stride > self.window:
            raise ValueError(f"stride must be at most window ({self.window}) so that every point is covered, "
                             f"got {self.stride}")
        if self.window - self.difference < 2:
            raise ValueError(f"window must be at least {2 + self.difference} with difference={self.difference}, "
                             f"got {self.window}")
        contamination_value(self.contamination)

    def _new_detector(self) -> BaseEstimator:
        if isinstance(self.detector, str):
            params = dict(self.detector_params or {})
            inner = make_detector(self.detector, **params)
            if "random_state" in inner.get_params() and "random_state" not in params:
                inner.set_params(random_state=self.random_state)
            return inner
        if self.detector_params:
            raise ValueError("detector_params applies to a detector given by name; set the instance's parameters")
        return clone(self.detector)

    # -------------------------------------------------------------------- fit
    def fit(self, series, y=None, *, callback=None) -> WindowDetector:
        """Fit the scaling, the window model and the threshold on a normal training series.

        Args:
            series: Shape ``(T,)`` or ``(T, C)``, finite; ``T`` at least ``window + 1``.
            y: Ignored (present for scikit-learn compatibility).
            callback: Passed to the wrapped detector's ``fit`` when it takes one (torch detectors:
                ``(epoch, train_loss, validation_loss)`` after each epoch).

        Returns:
            ``self``.
        """
        self._check_params()
        values = check_series(series, min_length=self.window + 1)
        if hasattr(series, "columns"):
            self.feature_names_in_ = np.asarray([str(c) for c in series.columns], dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        n_fit = len(values)
        if self.validation_fraction > 0:
            n_fit = len(values) - int(round(self.validation_fraction * len(values)))
            if n_fit < self.window + 1 or len(values) - n_fit < self.window:
                raise ValueError(f"series of {len(values)} points is too short to hold out validation_fraction="
                                 f"{self.validation_fraction} with window={self.window}; give a longer series or "
                                 "validation_fraction=0")
        train = values[:n_fit]
        self.n_features_in_ = values.shape[1]
        self.scaler_ = SeriesScaler.fit(train, self.difference, self.standardize)
        rows = window_features(train, self.window, self.stride, self.scaler_)
        inner = self._new_detector()
        if isinstance(inner, BaseDetector):  # the threshold comes from held-out time, below
            inner._fit_uncalibrated(rows, callback=callback)
        elif callback is not None and "max_epochs" in inner.get_params():
            inner.fit(rows, callback=callback)
        else:
            inner.fit(rows)
        self.detector_ = inner
        self.n_train_windows_ = len(rows)
        held_out = values[n_fit:] if n_fit < len(values) else values
        self.calibration_ = Calibration.from_scores(self._point_scores(held_out), "temporal")
        self.offset_ = self.calibration_.offset(contamination_value(self.contamination))
        logger.debug("fitted %s on %d windows of %d values", type(inner).__name__, len(rows), rows.shape[1])
        return self

    # ----------------------------------------------------------------- scores
    def window_scores(self, series) -> np.ndarray:
        """Normality score of every window (the wrapped detector's ``score_samples``).

        Args:
            series: Shape ``(T,)`` or ``(T, C)`` with the fitted ``C``, ``T >= window``.

        Returns:
            Shape ``((T - window) // stride + 1,)``, window ``k`` starting at point ``k * stride``.
        """
        return self._window_scores(self._check_score_series(series))

    def _window_scores(self, values: np.ndarray) -> np.ndarray:
        parts = [self.detector_.score_samples(rows)
                 for rows in window_feature_chunks(values, self.window, self.stride, self.scaler_)]
        return np.concatenate(parts).astype(np.float64, copy=False)

    def _point_scores(self, values: np.ndarray) -> np.ndarray:
        return windows_to_points(self._window_scores(values), len(values), self.window, self.stride,
                                 self.point_score)

    def score_samples(self, series) -> np.ndarray:
        """Normality score per point, higher = more normal; shape ``(T,)``.

        Every point gets the score of its most anomalous covering window (``point_score="max"``) or
        the mean over its covering windows; points after the last window take its score.

        Args:
            series: Shape ``(T,)`` or ``(T, C)`` with the fitted ``C``, ``T >= window``.
        """
        return self._point_scores(self._check_score_series(series))

    def _check_score_series(self, series) -> np.ndarray:
        check_is_fitted(self, "offset_")
        if hasattr(series, "columns") and hasattr(self, "feature_names_in_"):
            names = [str(c) for c in series.columns]
            if names != list(self.feature_names_in_):
                raise ValueError(f"series has columns {names}, but the model was fitted on "
                                 f"{list(self.feature_names_in_)}")
        return check_series(series, n_channels=self.n_features_in_, min_length=self.window)

    def streaming_scorer(self):
        """A new :class:`~flowad.timeseries.streaming.StreamingScorer` over this fitted detector."""
        from flowad.timeseries.streaming import StreamingScorer

        return StreamingScorer(self)

    def stream(self, chunks):
        """Score a stream of chunks (arrays ``(n, C)``) as they come; yields the scores that became
        final after each chunk, then the rest (:func:`~flowad.timeseries.streaming.stream_scores`)."""
        from flowad.timeseries.streaming import stream_scores

        return stream_scores(self, chunks)

    # ------------------------------------------------------------ model files
    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        inner_state, inner_arrays = self.detector_._save_state()
        state["detector_state"] = inner_state
        state["n_train_windows_"] = int(self.n_train_windows_)
        arrays.update(prefixed("scaler", self.scaler_.to_arrays()))
        arrays.update(prefixed("detector", inner_arrays))
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.scaler_ = SeriesScaler.from_arrays(unprefixed("scaler", arrays))
        self.n_train_windows_ = int(state["n_train_windows_"])
        inner = self._new_detector()
        inner._validate_params()
        inner._load_state(state["detector_state"], unprefixed("detector", arrays))
        self.detector_ = inner
