"""The demo runs on built-in data and writes its report."""

import pandas as pd

from flowad.evaluation import run_demo


def test_demo_report(tmp_path):
    table = run_demo(tmp_path / "demo", detectors=["maf", "iforest"], random_state=0)
    assert table["roc_auc"].is_monotonic_decreasing
    for name in ("metrics.csv", "metrics.md", "roc.png", "histograms.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    written = pd.read_csv(tmp_path / "demo" / "metrics.csv")
    assert set(written["detector"]) == {"maf", "iforest"}
    assert (written["roc_auc"] > 0.9).all()  # breast cancer is easy for both
