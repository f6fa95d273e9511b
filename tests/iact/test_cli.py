"""``flowad iact``: simulate -> hillas -> fit -> evaluate in subprocesses, and one-line errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.cli.runner import flowad


def test_simulate_hillas_fit_evaluate(tmp_path):
    events, table, model, report = (tmp_path / name for name in ("events.npz", "table.parquet", "model", "report"))
    result = flowad("iact", "simulate", "--camera", "magic", "--n", 600, "-o", events, "--seed", 3, "-q")
    assert result.returncode == 0, result.stderr
    assert "600 events (300 gammas, 300 hadrons" in result.stdout

    result = flowad("iact", "hillas", events, "-o", table, "--picture", 6, "--boundary", 3, "-q")
    assert result.returncode == 0, result.stderr
    frame = pd.read_parquet(table)
    assert len(frame) == 600 and {"length", "width", "alpha", "valid", "label"} <= set(frame.columns)
    assert frame.notna().all().all() and 0 < (~frame["valid"]).sum() < 100

    result = flowad("iact", "fit", table, "-o", model, "--epochs", 20, "-q")
    assert result.returncode == 0, result.stderr
    assert (model / "config.json").is_file() and (model / "weights.safetensors").is_file()

    result = flowad("iact", "evaluate", model, events, "--report", report, "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((report / "metrics.json").read_text())["flow"]
    assert metrics["roc_auc"] > 0.9 and metrics["n_gamma"] + metrics["n_invalid_gamma"] == 300
    for name in ("report.md", "report.html", "roc.png", "features.png", "camera_examples.png"):
        assert (report / name).is_file()


def test_fit_in_ratio_mode_and_its_refusal_without_labels(tmp_path):
    events, model = tmp_path / "events.npz", tmp_path / "ratio"
    assert flowad("iact", "simulate", "--camera", "magic", "--n", 600, "-o", events, "--seed", 3, "-q").returncode == 0
    result = flowad("iact", "fit", events, "-o", model, "--mode", "ratio", "--train-efficiency", 0.95, "--epochs", 5)
    assert result.returncode == 0, result.stderr
    assert "saved ratio separator (flows of gammas and hadrons" in " ".join(result.stdout.split())
    config = json.loads((model / "config.json").read_text())
    assert config["params"]["mode"] == "ratio"
    result = flowad("iact", "fit", events, "-o", tmp_path / "other", "--mode", "ratio", "--unlabelled", "-q")
    assert result.returncode == 1 and "--mode ratio needs labels" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["iact", "fit", "missing.npz", "-o", "m"], "data file not found"),
        (["iact", "evaluate", "nomodel", "x.csv"], "no flowad model"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    result = flowad(*args, cwd=tmp_path)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1

