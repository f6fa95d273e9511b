"""One-page HTML reports for tables: what ``flowad evaluate`` and ``flowad score --report`` write.

- :func:`evaluation_page`: labelled data. Score histograms of normal and anomalous rows with the
  model's threshold, the ROC and precision-recall curves, and the metrics table.
- :func:`scoring_page`: unlabelled data. The score histogram with the threshold, the share of rows
  flagged against the rate asked for, and the least normal rows with their ids and values.

Each page is one self-contained HTML file (inline SVG, no scripts, nothing fetched).

Example:
    >>> import numpy as np, pandas as pd
    >>> scores = np.random.default_rng(0).normal(size=200)
    >>> table = pd.DataFrame({"row": np.arange(200), "score": scores, "p_value": 0.5,
    ...                       "is_anomaly": (scores < -2).astype(int)})
    >>> page = scoring_page(table, offset=-2.0, contamination=0.01, title="demo")
    >>> "flagged" in page
    True
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve

from flowad.evaluation.html_page import html_page, html_table
from flowad.evaluation.svg import curve_svg, histogram_svg

__all__ = ["evaluation_page", "score_meaning", "scoring_page"]

#: What a flow detector's ``score_samples`` is, by ``score_type``.
FLOW_SCORES = {
    "nll": "the log-likelihood in nats",
    "hybrid": "the log-likelihood plus a nearest-neighbour log-density",
    "latent_norm": "minus the squared norm of the latent code",
    "mahalanobis": "minus the squared Mahalanobis distance of the latent code",
}


def score_meaning(detector) -> str:
    """A few words saying what ``detector``'s score is, for pages and messages.

    Example:
        >>> from flowad import FlowDetector
        >>> score_meaning(FlowDetector(score_type="hybrid"))
        'the log-likelihood plus a nearest-neighbour log-density'
    """
    return FLOW_SCORES.get(getattr(detector, "score_type", None), "the detector's normality score")


def _figures(*svgs: str) -> str:
    return "<div class='figures'>" + "".join(svgs) + "</div>"


def scoring_page(table: pd.DataFrame, *, offset: float, contamination: float, title: str, top: int = 20,
                 score_meaning: str = "the detector's normality score", values: pd.DataFrame | None = None,
                 max_value_columns: int = 12) -> str:
    """The HTML page of a scoring run.

    Args:
        table: What :meth:`~flowad.core.estimator.BaseDetector.score_table` returned (id columns or
            ``row``, ``score``, ``p_value``, ``is_anomaly``), ``N`` rows.
        offset: The model's threshold on ``score``.
        contamination: The alarm rate the model was calibrated for.
        title: Page heading (e.g. the model and data file names).
        top: How many of the least normal rows to list.
        score_meaning: What ``score`` is, for the page's note (see :func:`score_meaning`).
        values: The scored rows' feature columns as read, ``N`` rows in the order of ``table``; the
            first ``max_value_columns`` of them are listed beside the least normal rows.
        max_value_columns: Most feature columns listed.
    """
    scores = table["score"].to_numpy(np.float64)
    flagged = int(table["is_anomaly"].sum())
    share = flagged / max(len(table), 1)
    histogram = histogram_svg({"rows": scores}, offset, xlabel="score (higher = more normal)",
                              title="score histogram")
    order = np.argsort(scores, kind="stable")[:top]
    least = table.iloc[order].reset_index(drop=True)
    shown = ""
    with_values = values is not None and len(values) == len(table)
    if with_values:
        columns = [c for c in values.columns if c not in least.columns]
        if len(columns) > max_value_columns:
            shown = f" (the first {max_value_columns} of {len(columns)} feature columns)"
            columns = columns[:max_value_columns]
        least = pd.concat([least, values.iloc[order][columns].reset_index(drop=True)], axis=1)
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='big'>{flagged} of {len(table)} rows flagged ({share:.2%})</p>",
        f"<p class='note'>The model was calibrated to flag {contamination:.2%} of normal rows: a row is flagged "
        f"when its p-value is at most {contamination:g}, i.e. its score is below {offset:.6g}. The score is "
        f"{html.escape(score_meaning)} (higher = more normal). A share far above the calibrated rate means the data "
        f"differ from the training rows, or hold many anomalies.</p>",
        _figures(histogram),
        f"<h2>The {len(least)} least normal rows</h2>",
        f"<p class='note'>With the values of the columns the model reads{shown}.</p>" if with_values else "",
        html_table(least, digits=6, index=False),
    ]
    return html_page(title, "\n".join(body))


def evaluation_page(y: np.ndarray, scores: np.ndarray, *, offset: float, metrics: dict, contamination: float,
                    title: str) -> str:
    """The HTML page of an evaluation on labelled data.

    Args:
        y: Labels ``(N,)``, 1 = anomaly, both classes present.
        scores: ``score_samples`` of the rows ``(N,)``, higher = more normal.
        offset: The model's threshold on ``scores``.
        metrics: Name -> value (ROC-AUC, PR-AUC, precision, recall, F1, ...).
        contamination: The alarm rate the model was calibrated for.
        title: Page heading.
    """
    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    histogram = histogram_svg({"normal": scores[y == 0], "anomaly": scores[y == 1]}, offset,
                              xlabel="score (higher = more normal)", title="scores of normal and anomalous rows")
    fpr, tpr, _ = roc_curve(y, -scores)
    precision, recall, _ = precision_recall_curve(y, -scores)
    roc = curve_svg({f"ROC-AUC {metrics.get('roc_auc', float('nan')):.3f}": (fpr, tpr)},
                    xlabel="false-positive rate", ylabel="true-positive rate", title="ROC curve", diagonal=True)
    pr = curve_svg({f"PR-AUC {metrics.get('pr_auc', float('nan')):.3f}": (recall, precision)},
                   xlabel="recall", ylabel="precision", title="precision-recall curve")
    alarms = float((scores[y == 0] < offset).mean()) if (y == 0).any() else float("nan")
    table = pd.DataFrame({"value": {k: _number(v) for k, v in metrics.items()}})
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='note'>{int((y == 0).sum())} normal and {int(y.sum())} anomalous rows. Precision, recall and F1 "
        f"are at the model's own threshold ({offset:.6g}, calibrated to flag {contamination:.2%} of normal rows; "
        f"here it flags {alarms:.2%} of the normal rows). Best F1 picks its threshold with the labels and is "
        f"optimistic.</p>",
        _figures(histogram, roc, pr),
        "<h2>Metrics</h2>",
        html_table(table, digits=4),
    ]
    return html_page(title, "\n".join(body))


def _number(value) -> str:
    """A metric as it reads: counts as integers, rates with four decimals."""
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    try:
        return f"{float(value):.4f}"
    except (TypeError, ValueError):
        return str(value)
