"""Sliding windows over a series, the per-channel scaling learned on training data, and the mapping
of window scores back to points.

Conventions used throughout :mod:`flowad.timeseries`:

- A series is an array of shape ``(T,)`` (univariate) or ``(T, C)`` (``C`` channels), finite floats.
- Window ``k`` covers the points ``k * stride, ..., k * stride + window - 1``: windows start at the
  first point and step by ``stride``. With ``stride <= window`` every point up to the end of the last
  window is covered; the at most ``stride - 1`` points after it are covered by no window and take
  the score of the last window (:func:`windows_to_points`). Every point, the first ``window - 1``
  included, therefore gets a score as soon as the series holds at least one window.
- Differencing (``difference=1``) is taken *inside* each window, so a window of ``window`` points
  gives ``window - 1`` differences per channel and the window-to-point mapping does not change.
- Standardisation: per channel, the mean and standard deviation of the (differenced) training
  values; constant channels get scale 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "POINT_SCORES",
    "accumulate_window_scores",
    "SeriesScaler",
    "check_series",
    "n_windows",
    "window_features",
    "window_feature_chunks",
    "windows_to_points",
]

#: How window scores become point scores: the most anomalous covering window, or their mean.
POINT_SCORES = ("max", "mean")


def check_series(series, name: str = "series", n_channels: int | None = None, min_length: int = 1) -> np.ndarray:
    """Validate a series and return it as float64 of shape ``(T, C)``.

    Args:
        series: Array-like of shape ``(T,)`` or ``(T, C)``, finite numbers.
        name: Parameter name used in error messages.
        n_channels: Expected ``C`` (the channel count seen in ``fit``); ``None``: any.
        min_length: Fewest points accepted.

    Raises:
        ValueError: Wrong dimensionality, too short, NaN/inf, or the wrong number of channels.
    """
    try:
        values = np.asarray(series, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numbers of shape (T,) or (T, C): {error}") from None
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError(f"{name} must have shape (T,) or (T, C), got shape {values.shape}")
    if values.shape[1] == 0:
        raise ValueError(f"{name} must have at least one channel, got shape {values.shape}")
    if len(values) < min_length:
        raise ValueError(f"{name} must have at least {min_length} points, got {len(values)}")
    if n_channels is not None and values.shape[1] != n_channels:
        raise ValueError(f"{name} has {values.shape[1]} channels, but the model was fitted on {n_channels}")
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise ValueError(f"{name} contains NaN or infinite values (first at point {bad})")
    return values


def n_windows(n_points: int, window: int, stride: int) -> int:
    """Number of windows in a series of ``n_points`` points (0 when it is shorter than ``window``)."""
    return 0 if n_points < window else (n_points - window) // stride + 1


@dataclass
class SeriesScaler:
    """Per-channel differencing order and standardisation, learned on a training series.

    Attributes:
        difference: 0 (levels) or 1 (first differences inside each window).
        mean: Shape ``(C,)``, mean of the (differenced) training values.
        scale: Shape ``(C,)``, their standard deviation (1 for constant channels, and everywhere when
            standardisation is off).
    """

    difference: int
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, series: np.ndarray, difference: int = 0, standardize: bool = True) -> SeriesScaler:
        """Learn the statistics of ``series`` (shape ``(T, C)``, already validated)."""
        values = np.diff(series, axis=0) if difference else series
        n_channels = series.shape[1]
        if not standardize or len(values) == 0:
            return cls(int(difference), np.zeros(n_channels), np.ones(n_channels))
        scale = values.std(axis=0)
        scale = np.where(scale > 1e-12 * np.maximum(np.abs(values).max(axis=0), 1.0), scale, 1.0)
        return cls(int(difference), values.mean(axis=0), scale)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The statistics as named arrays (for model files)."""
        return {"difference": np.asarray([self.difference]), "mean": self.mean, "scale": self.scale}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> SeriesScaler:
        """Inverse of :meth:`to_arrays`."""
        return cls(int(arrays["difference"][0]), np.asarray(arrays["mean"]), np.asarray(arrays["scale"]))


def window_features(series: np.ndarray, window: int, stride: int, scaler: SeriesScaler) -> np.ndarray:
    """The feature rows of every window of ``series``.

    Args:
        series: Shape ``(T, C)``, ``T >= window``.
        window: Window length in points.
        stride: Step between window starts.
        scaler: Differencing and standardisation.

    Returns:
        Shape ``(n_windows, (window - difference) * C)``: each row is one window, time-major
        (the ``C`` channels of the first step, then of the second, ...).
    """
    views = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)[::stride]  # (N, C, window)
    views = np.swapaxes(views, 1, 2)  # (N, window, C)
    if scaler.difference:
        views = np.diff(views, axis=1)
    rows = (views - scaler.mean) / scaler.scale
    return rows.reshape(len(rows), -1)


def window_feature_chunks(series: np.ndarray, window: int, stride: int, scaler: SeriesScaler,
                          chunk_windows: int = 16_384) -> Iterator[np.ndarray]:
    """:func:`window_features` in blocks of at most ``chunk_windows`` windows, so that memory stays
    bounded for long series (the rows of a block are built only when it is reached)."""
    total = n_windows(len(series), window, stride)
    for first in range(0, total, chunk_windows):
        last = min(first + chunk_windows, total)  # windows first .. last - 1
        part = series[first * stride : (last - 1) * stride + window]
        yield window_features(part, window, stride, scaler)


def accumulate_window_scores(acc: np.ndarray, hits: np.ndarray, scores: np.ndarray, starts: np.ndarray,
                             window: int, point_score: str) -> None:
    """Fold window scores into per-point accumulators in place.

    ``acc[t]`` becomes the minimum (``"max"``: the most anomalous window; start it at +inf) or the sum
    (``"mean"``; start it at 0) of the scores of the windows starting at ``starts`` that cover point
    ``t``; ``hits[t]`` counts them. Windows are added offset by offset from a window's last point to
    its first, so batch scoring and the streaming scorer, which both call this, add up in the same
    order and get identical floating-point results.
    """
    for offset in range(window - 1, -1, -1):
        index = starts + offset
        if point_score == "max":
            acc[index] = np.minimum(acc[index], scores)
        else:
            acc[index] += scores
        hits[index] += 1


def windows_to_points(window_scores: np.ndarray, n_points: int, window: int, stride: int,
                      point_score: str = "max") -> np.ndarray:
    """Point scores from window normality scores (higher = more normal).

    Args:
        window_scores: Shape ``(n_windows(n_points, window, stride),)``, window ``k`` covering points
            ``k * stride .. k * stride + window - 1``.
        n_points: ``T``, the series length.
        window: Window length.
        stride: Step between window starts.
        point_score: ``"max"``: each point takes its *most anomalous* covering window (the lowest
            normality score); ``"mean"``: the mean score of the windows covering it.

    Returns:
        Shape ``(T,)``. Points after the last window (at most ``stride - 1``) take its score.
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    if point_score not in POINT_SCORES:
        raise ValueError(f"point_score must be one of {POINT_SCORES}, got {point_score!r}")
    count = n_windows(n_points, window, stride)
    if scores.shape != (count,) or count == 0:
        raise ValueError(f"window_scores must have shape ({count},) for {n_points} points, window {window} and "
                         f"stride {stride}, got {scores.shape}")
    starts = np.arange(count) * stride
    covered = starts[-1] + window
    out = np.full(covered, np.inf) if point_score == "max" else np.zeros(covered)
    hits = np.zeros(covered)
    accumulate_window_scores(out, hits, scores, starts, window, point_score)
    if point_score == "mean":
        out = out / np.maximum(hits, 1)
    return np.concatenate([out, np.full(n_points - covered, scores[-1])])
