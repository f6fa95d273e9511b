"""Metrics for anomalies in series: point-wise, event-wise, and the optimistic point-adjusted F1.

Labels: 1 = anomalous point. Anomaly scores: higher = more anomalous (``-score_samples``).

- **Point-wise**: ROC-AUC and PR-AUC of the point scores (:mod:`flowad.evaluation.tabular_metrics`);
  precision, recall and F1 of the points flagged at the detector's own threshold (from training data).
- **Event-wise** (range-based): an *event* is a maximal run of consecutive anomalous points. Event
  recall is the share of labelled events with at least one flagged point inside (however many points
  are flagged in it, it counts once); event precision is the share of predicted events (maximal runs
  of flagged points) that overlap a labelled event. This follows the event-wise view of Garg et al.,
  "An Evaluation of Anomaly Detection and Diagnosis in Multivariate Time Series", arXiv:2109.11428,
  with precision also counted over events (alarms), so a long false alarm is one false alarm. Alarm
  counting cannot see how *long* an alarm is: a detector that flags everything has event precision 1;
  read it beside the point precision and ``flagged_share`` (the share of points flagged).
- **Point-adjusted F1** (Xu et al., "Unsupervised Anomaly Detection via Variational Auto-Encoder for
  Seasonal KPIs in Web Applications", arXiv:1802.03903): every point of a labelled event counts as
  found when one of its points is flagged. It is known to be *optimistic*: a detector that flags
  random points scores high on long events (Kim et al., "Towards a Rigorous Evaluation of Time-Series
  Anomaly Detection", arXiv:2109.05257). Report it only beside the others, under its name
  ``point_adjusted_f1_optimistic``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from flowad.evaluation.tabular_metrics import _check_labels, _check_scores, pr_auc, precision_recall_f1, roc_auc

__all__ = [
    "SeriesMetrics",
    "evaluate_series",
    "event_precision_recall_f1",
    "events",
    "point_adjusted_f1",
]


def events(flags) -> list[tuple[int, int]]:
    """Maximal runs of true values as ``(start, stop)`` ranges (``stop`` exclusive).

    Args:
        flags: Shape ``(T,)``, booleans or 0/1.
    """
    mask = np.asarray(flags).astype(bool)
    if mask.ndim != 1:
        raise ValueError(f"flags must be 1-D, got shape {mask.shape}")
    edges = np.flatnonzero(np.diff(np.r_[0, mask.astype(np.int8), 0]))
    return [(int(a), int(b)) for a, b in edges.reshape(-1, 2)]


def _check_flags(y: np.ndarray, is_anomaly) -> np.ndarray:
    pred = np.asarray(is_anomaly)
    if pred.shape != y.shape:
        raise ValueError(f"is_anomaly must have shape {y.shape} like y_true, got {pred.shape}")
    return pred.astype(bool)


def event_precision_recall_f1(y_true, is_anomaly) -> tuple[float, float, float]:
    """Event precision, recall and F1 (see the module docstring; 0 where undefined).

    Args:
        y_true: Shape ``(T,)``, 1 = anomalous point.
        is_anomaly: Shape ``(T,)`` booleans, the flagged points.
    """
    y = _check_labels(y_true).astype(bool)
    pred = _check_flags(y, is_anomaly)
    true_events, predicted = events(y), events(pred)
    flagged = np.r_[0, np.cumsum(pred)]
    labelled = np.r_[0, np.cumsum(y)]
    found = sum(flagged[b] > flagged[a] for a, b in true_events)
    correct = sum(labelled[b] > labelled[a] for a, b in predicted)
    recall = found / len(true_events) if true_events else 0.0
    precision = correct / len(predicted) if predicted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(precision), float(recall), float(f1)


def point_adjusted_f1(y_true, is_anomaly) -> float:
    """Point-wise F1 after point adjustment (optimistic; see the module docstring).

    Args:
        y_true: Shape ``(T,)``, 1 = anomalous point.
        is_anomaly: Shape ``(T,)`` booleans, the flagged points.
    """
    y = _check_labels(y_true)
    adjusted = _check_flags(y, is_anomaly).copy()
    for start, stop in events(y):
        if adjusted[start:stop].any():
            adjusted[start:stop] = True
    return precision_recall_f1(y, adjusted)[2]


@dataclass
class SeriesMetrics:
    """Metrics of one detector on one labelled series."""

    roc_auc: float
    pr_auc: float
    precision: float
    recall: float
    f1: float
    event_precision: float
    event_recall: float
    event_f1: float
    point_adjusted_f1_optimistic: float
    flagged_share: float
    n_points: int
    n_anomalous_points: int
    n_events: int
    n_predicted_events: int

    def as_dict(self) -> dict[str, float]:
        """Plain dictionary (for tables and JSON)."""
        return asdict(self)


def evaluate_series(y_true, anomaly_score, is_anomaly) -> SeriesMetrics:
    """Every series metric from point anomaly scores and the detector's own flags.

    Args:
        y_true: Shape ``(T,)``, 1 = anomalous point; both classes present.
        anomaly_score: Shape ``(T,)``, higher = more anomalous.
        is_anomaly: Shape ``(T,)`` booleans, flagged at the threshold learned on training data.
    """
    y = _check_labels(y_true)
    scores = _check_scores(anomaly_score, len(y))
    pred = _check_flags(y, is_anomaly)
    precision, recall, f1 = precision_recall_f1(y, pred)
    e_precision, e_recall, e_f1 = event_precision_recall_f1(y, pred)
    return SeriesMetrics(
        roc_auc=roc_auc(y, scores), pr_auc=pr_auc(y, scores), precision=precision, recall=recall, f1=f1,
        event_precision=e_precision, event_recall=e_recall, event_f1=e_f1,
        point_adjusted_f1_optimistic=point_adjusted_f1(y, pred), flagged_share=float(pred.mean()),
        n_points=len(y), n_anomalous_points=int(y.sum()),
        n_events=len(events(y)), n_predicted_events=len(events(pred)),
    )
