"""Scoring a series point by point as it arrives, with the same result as batch scoring.

:class:`StreamingScorer` keeps the raw points of the window under construction (at most
``window - 1``: a ring of the latest points) and the partial scores of the points that a future
window may still cover (at most ``window - 1``). Each chunk is scored in one call of the wrapped
detector, so memory and time per point do not depend on how long the stream has run.

A point's score is final once no later window can cover it: with ``point_score="max"`` or
``"mean"`` that is ``window - 1`` points after it arrived (the *latency* of the scorer), so
:meth:`StreamingScorer.partial_score` returns the scores of the points that became final, in order,
and :meth:`StreamingScorer.flush` those of the rest when the stream ends. Concatenated, they equal
``detector.score_samples(series)`` on the whole series: the same windows are scored and point scores
are accumulated in the same order as in :func:`~flowad.timeseries.windows.windows_to_points`. With
the scikit-learn detectors the two agree bit for bit; torch models score a window with matrix
products whose rounding depends on how many windows go through together, so their scores agree to
the last few bits (measured: 1e-14 for the float64 flows, 6e-8 for the float32 autoencoder).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from sklearn.utils.validation import check_is_fitted

from flowad.timeseries.windows import accumulate_window_scores, check_series, n_windows

__all__ = ["StreamingScorer", "stream_scores"]


class StreamingScorer:
    """Incremental point scores of a fitted :class:`~flowad.timeseries.WindowDetector`.

    Args:
        detector: A fitted ``WindowDetector``.

    Attributes:
        n_seen: Points received so far. n_scored: Points whose final score was returned.
    """

    def __init__(self, detector) -> None:
        check_is_fitted(detector, "offset_")
        self.detector = detector
        self._window, self._stride = int(detector.window), int(detector.stride)
        self._channels = int(detector.n_features_in_)
        self._buffer = np.empty((0, self._channels))  # raw points from the next window's start on
        self._acc = np.empty(0)  # partial scores of the points from the next window's start on
        self._hits = np.empty(0)
        self._last_window_score: float | None = None
        self.n_seen = 0
        self.n_scored = 0

    @property
    def offset_(self) -> float:
        """The detector's threshold (points scoring below it are anomalies)."""
        return float(self.detector.offset_)

    def partial_score(self, chunk) -> np.ndarray:
        """Add points to the stream; return the scores that became final.

        Args:
            chunk: New points, shape ``(n, C)``; may be empty. A 1-D array is ``n`` points of a
                univariate model, or one point (length ``C``) of a ``C``-channel model.

        Returns:
            Final normality scores (higher = more normal) of the next points in stream order,
            shape ``(m,)`` with ``m`` possibly 0.
        """
        values = self._check_chunk(chunk)
        if len(values) == 0:
            return np.empty(0)
        self.n_seen += len(values)
        data = np.concatenate([self._buffer, values])  # raw points from the next window's start on
        count = n_windows(len(data), self._window, self._stride)
        acc = np.concatenate([self._acc, np.zeros(len(values))])
        hits = np.concatenate([self._hits, np.zeros(len(values))])
        if self.detector.point_score == "max":
            acc[len(self._acc):] = np.inf
        if count:
            scores = self.detector._window_scores(data[: (count - 1) * self._stride + self._window])
            self._last_window_score = float(scores[-1])
            accumulate_window_scores(acc, hits, scores, np.arange(count) * self._stride, self._window,
                                     self.detector.point_score)
        done = count * self._stride  # points before the next window's start are final
        final = self._final(acc[:done], hits[:done])
        self._buffer, self._acc, self._hits = data[done:].copy(), acc[done:].copy(), hits[done:].copy()
        self.n_scored += len(final)
        return final

    def _final(self, acc: np.ndarray, hits: np.ndarray) -> np.ndarray:
        if self.detector.point_score == "mean":
            return acc / np.maximum(hits, 1)
        return acc

    def flush(self) -> np.ndarray:
        """End of stream: the scores of the points not yet returned (points after the last window
        take its score, as in batch scoring); the scorer is then empty and may start a new stream.

        Raises:
            ValueError: If the stream held fewer than ``window`` points (nothing can be scored).
        """
        if self._last_window_score is None:
            if self.n_seen == 0:
                return np.empty(0)
            raise ValueError(f"the stream has {self.n_seen} points, fewer than window={self._window}; "
                             "nothing can be scored")
        acc, hits = self._acc, self._hits
        final = np.where(hits > 0, self._final(acc, hits), self._last_window_score)
        self.n_scored += len(final)
        self.reset()
        return final

    def reset(self) -> None:
        """Forget the stream (keep the detector)."""
        self._buffer = np.empty((0, self._channels))
        self._acc, self._hits = np.empty(0), np.empty(0)
        self._last_window_score = None
        self.n_seen = self.n_scored = 0

    def _check_chunk(self, chunk) -> np.ndarray:
        values = np.asarray(chunk, dtype=np.float64)
        if values.size == 0:
            return np.empty((0, self._channels))
        if values.ndim == 1 and self._channels > 1:
            values = values[None, :]  # one multichannel point
        return check_series(values, "chunk", n_channels=self._channels)


def stream_scores(detector, chunks: Iterable) -> Iterator[np.ndarray]:
    """Iterator API: final point scores for each incoming chunk, then the rest at the end.

    Args:
        detector: A fitted :class:`~flowad.timeseries.WindowDetector`.
        chunks: Iterable of arrays of shape ``(n,)`` or ``(n, C)`` (see
            :meth:`StreamingScorer.partial_score`).

    Yields:
        Arrays of final scores in stream order (some may be empty); together, the batch scores.
    """
    scorer = StreamingScorer(detector)
    for chunk in chunks:
        yield scorer.partial_score(chunk)
    yield scorer.flush()
