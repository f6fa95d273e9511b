"""Figures and tables for series: the series with its labelled and detected anomalies, the score
tracks beneath, and the Markdown report of the time-series benchmark."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from flowad.evaluation.ts_metrics import events

__all__ = ["TABLE_METRICS", "bold_best", "plot_series_detections", "summary_table"]

#: Metrics shown in the report's tables, in order (the optimistic one last and named so).
TABLE_METRICS = ("precision", "recall", "f1", "roc_auc", "pr_auc", "event_precision", "event_recall", "event_f1",
                 "point_adjusted_f1_optimistic", "flagged_share")


def _shade(ax, mask: np.ndarray, color: str, alpha: float) -> None:
    for start, stop in events(mask):
        ax.axvspan(start - 0.5, stop - 0.5, color=color, alpha=alpha, lw=0)


def plot_series_detections(series: np.ndarray, labels: np.ndarray, anomaly_scores: dict[str, np.ndarray],
                           thresholds: dict[str, float], path: str | Path, channels: tuple[str, ...] | None = None,
                           title: str = "", marked: str | None = None) -> Path:
    """The series with labelled anomalies shaded and one detector's detections marked, and beneath
    it one anomaly-score track per detector with its own threshold.

    Args:
        series: Shape ``(T,)`` or ``(T, C)``; channels are standardised and stacked for display.
        labels: Shape ``(T,)``, 1 = anomalous point (shaded red in every panel).
        anomaly_scores: Detector name -> point scores, shape ``(T,)``, higher = more anomalous.
        thresholds: Detector name -> threshold on the same scale (points above it are detections).
        path: PNG file to write.
        channels: Channel names for the legend.
        title: Figure title.
        marked: Detector whose detections are marked on the series (default: the first).
    """
    values = np.asarray(series, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    labels = np.asarray(labels).astype(bool)
    names = list(anomaly_scores)
    marked = marked or names[0]
    t = np.arange(len(values))
    fig, axes = plt.subplots(1 + len(names), 1, figsize=(11, 2.2 + 1.1 * len(names)), dpi=100, sharex=True,
                             gridspec_kw={"height_ratios": [2.4] + [1] * len(names)})
    top = axes[0]
    spread = values.std(axis=0)
    shown = (values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    offsets = -4.0 * np.arange(shown.shape[1])
    for c in range(shown.shape[1]):
        label = channels[c] if channels is not None else None
        top.plot(t, shown[:, c] + offsets[c], lw=0.5, label=label)
    _shade(top, labels, "red", 0.18)
    flagged = anomaly_scores[marked] > thresholds[marked]
    top.plot(t[flagged], np.full(flagged.sum(), shown.max() + 1.0), "|", color="k", ms=6,
             label=f"detected by {marked}")
    top.set_yticks([])
    top.set_title(title or "series (standardised), labelled anomalies shaded", fontsize=9)
    top.legend(fontsize=6, loc="upper right", ncol=min(6, shown.shape[1] + 1))
    for ax, name in zip(axes[1:], names, strict=True):
        scores = np.asarray(anomaly_scores[name], dtype=np.float64)
        threshold = thresholds[name]
        low = np.percentile(scores, 1)
        high = np.percentile(scores, 99.9)
        if np.isfinite(threshold) and threshold < np.finfo(np.float64).max:  # else: no point can be flagged
            high = max(high, threshold)
        high = high + 0.3 * (high - low) if high > low else low + 1.0
        _shade(ax, labels, "red", 0.18)
        _shade(ax, scores > threshold, "k", 0.12)
        ax.plot(t, np.clip(scores, low, high), lw=0.5, color="tab:blue")
        ax.axhline(min(threshold, high), color="k", lw=0.7, ls="--")
        ax.set_ylim(low - 0.05 * (high - low), high)
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    axes[-1].set_xlabel("point (score tracks: anomaly score, dashed own threshold, grey = detected)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def summary_table(rows: pd.DataFrame, metrics: tuple[str, ...] = TABLE_METRICS) -> pd.DataFrame:
    """Mean over seeds (and ``± std`` where there is more than one seed) per data set and method.

    Args:
        rows: One row per (dataset, method, seed) with the metric columns.
        metrics: Columns to summarise.
    """
    grouped = rows.groupby(["dataset", "method"], sort=False)
    mean, std, count = grouped[list(metrics)].mean(), grouped[list(metrics)].std(), grouped.size()
    out = mean.copy().astype(object)
    for key in mean.index:
        for metric in metrics:
            value = f"{mean.loc[key, metric]:.3f}"
            if count.loc[key] > 1:
                value += f" ± {std.loc[key, metric]:.3f}"
            out.loc[key, metric] = value
    return out.reset_index()


def bold_best(table: pd.DataFrame, column: str, by: str = "dataset") -> pd.DataFrame:
    """Bold the best mean of ``column`` (strings ``"mean ± std"``) within each ``by`` group."""
    table = table.copy()
    means = table[column].str.split(" ").str[0].astype(float)
    for _, index in table.groupby(by, sort=False).groups.items():
        best = means.loc[index].max()
        for i in index:
            if means.loc[i] == best:
                table.loc[i, column] = f"**{table.loc[i, column]}**"
    return table
