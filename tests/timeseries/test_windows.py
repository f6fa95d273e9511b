"""Sliding windows, per-channel scaling and the window -> point mapping on hand-made series."""

import numpy as np
import pytest

from flowad.timeseries import SeriesScaler, check_series, n_windows, window_features, windows_to_points
from flowad.timeseries.windows import window_feature_chunks


def _identity(channels: int, difference: int = 0) -> SeriesScaler:
    return SeriesScaler(difference, np.zeros(channels), np.ones(channels))


def test_windows_are_time_major_rows():
    series = np.c_[np.arange(4.0), 10 + np.arange(4.0)]
    rows = window_features(series, 2, 1, _identity(2))
    np.testing.assert_array_equal(rows, [[0, 10, 1, 11], [1, 11, 2, 12], [2, 12, 3, 13]])
    strided = window_features(np.arange(7.0)[:, None], 3, 2, _identity(1))
    np.testing.assert_array_equal(strided, [[0, 1, 2], [2, 3, 4], [4, 5, 6]])
    assert n_windows(7, 3, 2) == 3 and n_windows(8, 3, 2) == 3 and n_windows(2, 3, 1) == 0


def test_differencing_inside_windows_and_standardisation():
    series = np.c_[np.arange(5.0) * 2, np.arange(5.0) ** 2]
    rows = window_features(series, 3, 1, _identity(2, difference=1))
    np.testing.assert_array_equal(rows, [[2, 1, 2, 3], [2, 3, 2, 5], [2, 5, 2, 7]])
    scaler = SeriesScaler.fit(np.c_[[1.0, 3.0, 1.0, 3.0], [5.0, 5.0, 5.0, 5.0]])
    np.testing.assert_allclose(scaler.mean, [2, 5])
    np.testing.assert_allclose(scaler.scale, [1, 1])  # std 1; the constant channel keeps scale 1
    np.testing.assert_allclose(window_features(np.c_[[3.0, 1.0], [5.0, 6.0]], 2, 1, scaler), [[1, 0, -1, 1]])


def test_chunked_features_equal_whole():
    series = np.random.default_rng(0).normal(size=(101, 3))
    whole = window_features(series, 7, 3, _identity(3))
    np.testing.assert_array_equal(np.concatenate(list(window_feature_chunks(series, 7, 3, _identity(3), 4))), whole)


def test_window_to_point_mapping_by_hand():
    # windows of 3 with stride 2 over 8 points cover [0-2], [2-4], [4-6]; point 7 is after the last window
    scores = np.array([-1.0, -5.0, -2.0])
    np.testing.assert_array_equal(windows_to_points(scores, 8, 3, 2, "max"), [-1, -1, -5, -5, -5, -2, -2, -2])
    np.testing.assert_array_equal(windows_to_points(scores, 8, 3, 2, "mean"), [-1, -1, -3, -5, -3.5, -2, -2, -2])
    # stride 1: the first window - 1 points are covered by fewer windows, but covered
    np.testing.assert_array_equal(windows_to_points(np.array([0.0, -4.0, 2.0]), 5, 3, 1, "mean"),
                                  [0, -2, -2 / 3, -1, 2])


@pytest.mark.parametrize(
    ("series", "kwargs", "message"),
    [
        (np.array([1.0, np.nan, 2.0]), {}, "NaN"),
        (np.zeros((3, 2, 2)), {}, "shape"),
        (np.zeros((0, 2)), {}, "at least 1 points"),
        (np.zeros((5, 3)), {"n_channels": 2}, "3 channels"),
        ([["a", "b"]], {}, "numbers"),
    ],
)
def test_bad_series(series, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_series(series, **kwargs)


def test_bad_window_scores():
    with pytest.raises(ValueError, match="window_scores"):
        windows_to_points(np.zeros(4), 8, 3, 2)
    with pytest.raises(ValueError, match="point_score"):
        windows_to_points(np.zeros(3), 8, 3, 2, "median")
