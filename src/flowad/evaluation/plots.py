"""Figures for reports: ROC curves and score histograms (matplotlib, written as PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_curve

from flowad.evaluation.figures import subplots

__all__ = ["plot_roc_curves", "plot_score_histograms"]


def plot_roc_curves(y_true: np.ndarray, anomaly_scores: dict[str, np.ndarray], path: str | Path,
                    title: str = "ROC curves") -> Path:
    """One ROC curve per detector on shared axes.

    Args:
        y_true: Shape ``(N,)``, 1 = anomaly.
        anomaly_scores: Detector name -> scores of shape ``(N,)``, higher = more anomalous.
        path: PNG file to write.
    """
    fig, ax = subplots(figsize=(5.2, 4.6), dpi=110)
    for name, scores in anomaly_scores.items():
        fpr, tpr, _ = roc_curve(y_true, scores)
        ax.plot(fpr, tpr, lw=1.4, label=name)
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_score_histograms(y_true: np.ndarray, anomaly_scores: dict[str, np.ndarray], path: str | Path,
                          thresholds: dict[str, float] | None = None) -> Path:
    """Per detector, histograms of the anomaly scores of normal and anomalous rows.

    Args:
        y_true: Shape ``(N,)``, 1 = anomaly.
        anomaly_scores: Detector name -> scores of shape ``(N,)``, higher = more anomalous.
        path: PNG file to write.
        thresholds: Detector name -> its own threshold on the same scale, drawn as a line.
    """
    names = list(anomaly_scores)
    cols = min(4, len(names))
    rows = -(-len(names) // cols)
    fig, axes = subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), dpi=100, squeeze=False)
    y = np.asarray(y_true).astype(bool)
    for ax, name in zip(list(axes.flat)[: len(names)], names, strict=True):
        scores = np.asarray(anomaly_scores[name])
        # The range follows the normal rows (flows give far anomalies astronomically large scores);
        # anything beyond twice the normals' spread is piled into the last bin.
        lo = np.percentile(scores, 0.5)
        top = np.percentile(scores[~y], 99) if (~y).any() else np.percentile(scores, 99)
        hi = top + (top - lo)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        ax.hist(np.clip(scores[~y], lo, hi), bins=bins, alpha=0.6, density=True, label="normal")
        ax.hist(np.clip(scores[y], lo, hi), bins=bins, alpha=0.6, density=True, label="anomaly")
        if thresholds and name in thresholds:
            ax.axvline(np.clip(thresholds[name], lo, hi), color="k", lw=0.9, ls="--")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("anomaly score (last bin: everything beyond twice the normals' spread; dashed: own threshold)",
                  fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
