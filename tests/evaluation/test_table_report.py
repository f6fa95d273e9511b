"""The HTML pages of flowad evaluate and flowad score --report open cleanly in a browser."""

import numpy as np
import pandas as pd

from flowad import FlowDetector, IsolationForestDetector
from flowad.evaluation.table_report import evaluation_page, score_meaning, scoring_page
from tests.browser import external_references, open_page


def _scores(rng):
    normal, anomalies = rng.normal(-5, 1, 300), rng.normal(-12, 3, 20)
    anomalies[0] = -1e5  # a far outlier must not squeeze the histogram
    return np.r_[normal, anomalies], np.r_[np.zeros(300, int), np.ones(20, int)]


def test_evaluation_page_opens_without_console_errors(tmp_path):
    scores, y = _scores(np.random.default_rng(0))
    page = evaluation_page(y, scores, offset=-7.5, metrics={"roc_auc": 0.97, "pr_auc": 0.8, "f1": 0.7},
                           contamination=0.01, title="model on data.csv")
    assert external_references(page) == []
    path = tmp_path / "report.html"
    path.write_text(page)
    dom, console = open_page(path)
    assert console == []
    assert "ROC-AUC 0.970" in dom and "threshold" in dom and "beyond the axis" in dom
    open_page(path, tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_scoring_page_opens_without_console_errors(tmp_path):
    scores, _ = _scores(np.random.default_rng(1))
    table = pd.DataFrame({"id": [f"r{i}" for i in range(len(scores))], "score": scores, "p_value": 0.5,
                          "is_anomaly": (scores < -7.5).astype(int)})
    page = scoring_page(table, offset=-7.5, contamination=0.01, title="model on new.csv")
    assert external_references(page) == []
    path = tmp_path / "scores.html"
    path.write_text(page)
    dom, console = open_page(path)
    assert console == []
    assert f"{int(table.is_anomaly.sum())} of 320 rows flagged" in dom and "r300" in dom


def test_scoring_page_says_what_the_score_is():
    table = pd.DataFrame({"row": [0, 1], "score": [1.0, -3.0], "p_value": [0.5, 0.001], "is_anomaly": [0, 1]})
    hybrid = score_meaning(FlowDetector(score_type="hybrid"))
    page = scoring_page(table, offset=-2.0, contamination=0.01, title="t", score_meaning=hybrid)
    assert "The score is the log-likelihood plus a nearest-neighbour log-density" in page
    assert score_meaning(FlowDetector()) == "the log-likelihood in nats"
    assert score_meaning(IsolationForestDetector()) == "the detector's normality score"
