"""Metrics, reports and the demo."""

from flowad.evaluation.demo import run_demo
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.tabular_metrics import (
    DetectionMetrics,
    best_f1,
    evaluate_detector,
    evaluate_scores,
    pr_auc,
    precision_recall_f1,
    roc_auc,
)

__all__ = [
    "DetectionMetrics",
    "best_f1",
    "evaluate_detector",
    "evaluate_scores",
    "markdown_table",
    "pr_auc",
    "precision_recall_f1",
    "roc_auc",
    "run_demo",
]
