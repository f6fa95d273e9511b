"""Detection metrics. Labels: 1 = anomaly, 0 = normal. Scores: higher = more anomalous.

This is the one place where a detector's ``score_samples`` (higher = more normal) is flipped into
an anomaly score (:func:`evaluate_detector`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

__all__ = [
    "DetectionMetrics",
    "best_f1",
    "evaluate_detector",
    "evaluate_scores",
    "pr_auc",
    "precision_recall_f1",
    "roc_auc",
]


def _check_labels(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array of 0/1 labels, got shape {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (normal) and 1 (anomaly)")
    return y.astype(int)


def _check_scores(scores, n: int, name: str = "anomaly_score") -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if s.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) like y_true, got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return s


def roc_auc(y_true, anomaly_score) -> float:
    """Area under the ROC curve (needs both classes present).

    Args:
        y_true: Shape ``(N,)``, 1 = anomaly.
        anomaly_score: Shape ``(N,)``, higher = more anomalous.
    """
    y = _check_labels(y_true)
    if y.min() == y.max():
        raise ValueError("y_true must contain both normal (0) and anomalous (1) rows for ROC-AUC")
    return float(roc_auc_score(y, _check_scores(anomaly_score, len(y))))


def pr_auc(y_true, anomaly_score) -> float:
    """Area under the precision-recall curve as average precision (anomalies are positive)."""
    y = _check_labels(y_true)
    if y.max() == 0:
        raise ValueError("y_true must contain anomalous (1) rows for PR-AUC")
    return float(average_precision_score(y, _check_scores(anomaly_score, len(y))))


def precision_recall_f1(y_true, is_anomaly) -> tuple[float, float, float]:
    """Precision, recall and F1 of hard predictions (anomaly = positive; 0 where undefined).

    Args:
        y_true: Shape ``(N,)``, 1 = anomaly.
        is_anomaly: Shape ``(N,)`` booleans, True where a row is flagged.
    """
    y = _check_labels(y_true).astype(bool)
    pred = np.asarray(is_anomaly, dtype=bool)
    if pred.shape != y.shape:
        raise ValueError(f"is_anomaly must have shape {y.shape}, got {pred.shape}")
    tp = int((pred & y).sum())
    precision = tp / pred.sum() if pred.sum() else 0.0
    recall = tp / y.sum() if y.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def best_f1(y_true, anomaly_score) -> tuple[float, float]:
    """The best F1 over all thresholds and the threshold reaching it.

    Optimistic by construction: the threshold is chosen with the test labels. Report it only
    beside the F1 at the detector's own threshold.

    Returns:
        ``(f1, threshold)``: rows with ``anomaly_score >= threshold`` are flagged.
    """
    y = _check_labels(y_true)
    precision, recall, thresholds = precision_recall_curve(y, _check_scores(anomaly_score, len(y)))
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0)
    i = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(f1[i]), float(thresholds[i]) if len(thresholds) else float("nan")


@dataclass
class DetectionMetrics:
    """Metrics of one detector on one labelled test set."""

    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    best_f1: float
    n: int
    n_anomalies: int

    def as_dict(self) -> dict[str, float]:
        """Plain dictionary (for tables and JSON)."""
        return asdict(self)


def evaluate_scores(y_true, anomaly_score, is_anomaly) -> DetectionMetrics:
    """All metrics from anomaly scores and hard predictions.

    Args:
        y_true: Shape ``(N,)``, 1 = anomaly, both classes present.
        anomaly_score: Shape ``(N,)``, higher = more anomalous.
        is_anomaly: Shape ``(N,)``, the detector's own decisions at its training threshold.
    """
    y = _check_labels(y_true)
    precision, recall, f1 = precision_recall_f1(y, is_anomaly)
    return DetectionMetrics(
        roc_auc=roc_auc(y, anomaly_score),
        pr_auc=pr_auc(y, anomaly_score),
        precision=precision,
        recall=recall,
        f1=f1,
        best_f1=best_f1(y, anomaly_score)[0],
        n=len(y),
        n_anomalies=int(y.sum()),
    )


def evaluate_detector(detector, X, y_true) -> DetectionMetrics:
    """Score a fitted detector on ``X`` (shape ``(N, D)``) against labels ``y_true`` (1 = anomaly)."""
    normality = detector.score_samples(X)
    return evaluate_scores(y_true, -normality, normality < detector.offset_)
