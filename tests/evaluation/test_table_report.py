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


def test_scoring_page_lists_the_least_normal_rows_with_their_values():
    table = pd.DataFrame({"id": ["a", "b", "c"], "score": [1.0, -9.0, -3.0], "p_value": [0.5, 0.001, 0.2],
                          "is_anomaly": [0, 1, 0]})
    values = pd.DataFrame({"amount": [10.0, 5000.0, 12.5], "score": [7, 8, 9],  # a feature named like an output
                           **{f"c{i}": [i, i, i] for i in range(20)}})
    page = scoring_page(table, offset=-5.0, contamination=0.01, title="t", top=2, values=values, max_value_columns=3)
    rows = page[page.index("least normal rows"):]
    assert rows.index("<td>b</td>") < rows.index("<td>5000.0</td>") < rows.index("<td>c</td>") < rows.index("12.5")
    assert "<td>10.0</td>" not in rows  # only the two least normal rows
    assert ">amount<" in rows and ">c1<" in rows and ">c2<" not in rows and "the first 3 of 21 feature columns" in rows
    assert rows.count(">score<") == 1  # the output's score, not the feature of that name
