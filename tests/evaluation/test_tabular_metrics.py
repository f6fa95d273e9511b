"""Metrics against hand-computed values."""

import numpy as np
import pytest

from flowad import make_detector
from flowad.evaluation import best_f1, evaluate_detector, pr_auc, precision_recall_f1, roc_auc

Y = np.array([0, 0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8, 0.3])  # one anomaly ranked below two normals


def test_roc_auc_counts_correctly_ordered_pairs():
    # pairs (anomaly, normal): 0.8 beats all 3; 0.3 beats only 0.1 -> 4 of 6
    assert roc_auc(Y, S) == pytest.approx(4 / 6)


def test_pr_auc_is_average_precision():
    # ranking: 0.8(A) 0.4(N) 0.35(N) 0.3(A) 0.1(N): precision at each anomaly: 1, 2/4
    assert pr_auc(Y, S) == pytest.approx((1 + 0.5) / 2)


def test_precision_recall_f1_at_a_threshold():
    p, r, f = precision_recall_f1(Y, S >= 0.35)  # flags 0.4, 0.35, 0.8
    assert (p, r) == (pytest.approx(1 / 3), 0.5)
    assert f == pytest.approx(2 * (1 / 3) * 0.5 / (1 / 3 + 0.5))
    assert precision_recall_f1(Y, np.zeros(5, bool)) == (0.0, 0.0, 0.0)


def test_best_f1_is_the_optimum_over_thresholds():
    f1, threshold = best_f1(Y, S)
    assert f1 == pytest.approx(2 / 3)  # flag only 0.8: P=1, R=0.5 (or flag all >= 0.3: P=0.5, R=1)
    assert threshold in S


def test_inputs_are_checked():
    with pytest.raises(ValueError, match="both"):
        roc_auc(np.zeros(3), np.arange(3.0))
    with pytest.raises(ValueError, match="only 0"):
        roc_auc(np.array([0, 2, 1]), np.arange(3.0))
    with pytest.raises(ValueError, match="shape"):
        roc_auc(Y, S[:3])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(Y, np.r_[S[:4], np.nan])


def test_evaluate_detector_flips_the_sign(blobs):
    train, (test, y) = blobs
    detector = make_detector("iforest", random_state=0).fit(train)
    metrics = evaluate_detector(detector, test, y)
    assert metrics.roc_auc == pytest.approx(roc_auc(y, -detector.score_samples(test)))
    assert metrics.roc_auc > 0.9 and metrics.n == len(y) and metrics.n_anomalies == 40
    assert metrics.best_f1 >= metrics.f1
