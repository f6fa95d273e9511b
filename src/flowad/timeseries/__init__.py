"""Anomaly detection on univariate and multivariate series: sliding windows, any flowad detector
per window, point scores, and streaming scores equal to batch scores."""

from flowad.timeseries.streaming import StreamingScorer, stream_scores
from flowad.timeseries.window_detector import WindowDetector
from flowad.timeseries.windows import (
    POINT_SCORES,
    SeriesScaler,
    check_series,
    n_windows,
    window_features,
    windows_to_points,
)

__all__ = [
    "POINT_SCORES",
    "SeriesScaler",
    "StreamingScorer",
    "WindowDetector",
    "check_series",
    "n_windows",
    "stream_scores",
    "window_features",
    "windows_to_points",
]
