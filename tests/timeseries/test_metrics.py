"""Series metrics on hand-made labels with known answers."""

import numpy as np
import pytest

from flowad.evaluation.ts_metrics import evaluate_series, event_precision_recall_f1, events, point_adjusted_f1

Y = np.array([0, 1, 1, 0, 0, 1, 0, 0, 1, 1])
PRED = np.array([0, 0, 1, 0, 1, 0, 0, 0, 0, 0], dtype=bool)


def test_events_are_maximal_runs():
    assert events(Y) == [(1, 3), (5, 6), (8, 10)]
    assert events(np.zeros(4)) == [] and events([1, 1]) == [(0, 2)]


def test_event_metrics_by_hand():
    # labelled events (1-2), (5), (8-9): only the first is hit -> recall 1/3;
    # predicted events (2), (4): one overlaps a labelled event -> precision 1/2
    precision, recall, f1 = event_precision_recall_f1(Y, PRED)
    assert (precision, recall) == (0.5, pytest.approx(1 / 3)) and f1 == pytest.approx(0.4)


def test_one_hit_counts_once():
    many_hits = np.zeros(10, bool)
    many_hits[[1, 2]] = True  # two flagged points in the same labelled event, one predicted event
    assert event_precision_recall_f1(Y, many_hits) == (1.0, pytest.approx(1 / 3), pytest.approx(0.5))
    split = np.zeros(10, bool)
    split[[8]] = split[[1]] = True
    assert event_precision_recall_f1(Y, split)[:2] == (1.0, pytest.approx(2 / 3))


def test_point_adjusted_f1_is_optimistic():
    # adjusted flags: 1, 2 (whole first event) and 4 -> precision 2/3, recall 2/5 -> F1 0.5
    assert point_adjusted_f1(Y, PRED) == pytest.approx(0.5)
    metrics = evaluate_series(Y, np.arange(10.0), PRED)
    assert metrics.f1 == pytest.approx(2 * 0.5 * 0.2 / 0.7)  # point-wise: 1 of 2 flags right, 1 of 5 found
    assert metrics.point_adjusted_f1_optimistic > metrics.f1
    assert (metrics.n_events, metrics.n_predicted_events, metrics.flagged_share) == (3, 2, 0.2)


def test_perfect_and_silent_detectors():
    assert event_precision_recall_f1(Y, Y) == (1.0, 1.0, 1.0)
    assert event_precision_recall_f1(Y, np.zeros(10)) == (0.0, 0.0, 0.0)
    assert evaluate_series(Y, Y.astype(float), Y).roc_auc == 1.0


def test_bad_input():
    with pytest.raises(ValueError, match="is_anomaly"):
        event_precision_recall_f1(Y, PRED[:5])
    with pytest.raises(ValueError, match="y_true"):
        event_precision_recall_f1(Y * 2, PRED)
    with pytest.raises(ValueError, match="anomaly_score"):
        evaluate_series(Y, np.full(10, np.nan), PRED)
