"""The command line, end to end: the table commands, their outputs and their errors."""

import json

import numpy as np
import pandas as pd
import pytest

from tests.cli.runner import flowad


@pytest.fixture
def csv_data(tmp_path, blobs):
    train, (test, y) = blobs
    columns = ["speed", "rpm", "temp", "load"]
    train_frame = pd.DataFrame(train, columns=columns).assign(label=0)
    test_frame = pd.DataFrame(test, columns=columns).assign(label=y)
    train_path, test_path = tmp_path / "train.csv", tmp_path / "test.csv"
    pd.concat([train_frame, test_frame.iloc[-10:]]).to_csv(train_path, index=False)  # 10 anomalies
    test_frame.to_csv(test_path, index=False)
    return train_path, test_path, y


def test_fit_score_evaluate(tmp_path, csv_data):
    train, test, y = csv_data
    model = tmp_path / "model"
    result = flowad("fit", train, "--model", "maf", "-o", model, "--label-column", "label", "--epochs", "40", "--quiet")
    assert result.returncode == 0, result.stderr
    assert (model / "config.json").is_file()

    scores_path = tmp_path / "scores.csv"
    result = flowad("score", model, test, "-o", scores_path, "-q")  # the label column is known to the model
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(scores_path)
    assert list(scores.columns) == ["row", "score", "p_value", "is_anomaly"] and len(scores) == len(y)
    assert set(scores["is_anomaly"]) <= {0, 1}
    assert scores["score"][y == 1].mean() < scores["score"][y == 0].mean()
    assert scores["is_anomaly"][y == 1].mean() > scores["is_anomaly"][y == 0].mean()

    metrics_path = tmp_path / "metrics.json"
    result = flowad("evaluate", model, test, "-o", metrics_path, "-q")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(metrics_path.read_text())
    assert metrics["roc_auc"] > 0.9 and "roc_auc" in result.stdout


def test_npz_and_parquet_inputs(tmp_path, blobs):
    train, (test, y) = blobs
    np.savez(tmp_path / "train.npz", X=train)
    pd.DataFrame(test, columns=list("abcd")).assign(y=y).to_parquet(tmp_path / "test.parquet")
    pd.DataFrame(train, columns=list("abcd")).to_parquet(tmp_path / "train.parquet")
    assert flowad("fit", tmp_path / "train.npz", "-m", "iforest", "-o", tmp_path / "m1", "-q").returncode == 0
    assert flowad("fit", tmp_path / "train.parquet", "-m", "elliptic", "-o", tmp_path / "m2", "-q").returncode == 0
    result = flowad("evaluate", tmp_path / "m2", tmp_path / "test.parquet", "-l", "y", "-o", tmp_path / "e.json", "-q")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "missing.csv", "-o", "m"], "data file not found"),
        (["fit", "{train}", "-o", "m", "-m", "knn"], "detector must be one of"),
        (["fit", "{train}", "-o", "m", "-l", "nope"], "label_column: no column 'nope'"),
        (["score", "nomodel", "{test}"], "no flowad model"),
        (["fit", "{train}", "-o", "m", "--contamination", "lots"], "contamination"),
        # what the option parser rejects: the same one line and status
        (["fit", "{train}", "-o", "m", "--threads", "0"], "'--threads'"),
        (["fit", "{train}", "-o", "m", "--epochs", "many"], "'--epochs'"),
        (["fit", "{train}", "-o", "m", "--no-such-option"], "--no-such-option"),
        (["fit"], "Missing argument 'data'; see 'flowad fit --help'"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, csv_data, args, message):
    train, test, _ = csv_data
    args = [a.format(train=train, test=test) for a in args]
    result = flowad(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "m").exists()


def test_a_bare_command_group_prints_its_help():
    result = flowad("image")
    assert "Usage: flowad image" in result.stdout + result.stderr and "error:" not in result.stderr


def test_wrong_columns_at_score_time(tmp_path, csv_data):
    train, _, _ = csv_data
    model = tmp_path / "model"
    assert flowad("fit", train, "-m", "iforest", "-o", model, "-l", "label", "-q").returncode == 0
    other = tmp_path / "other.csv"
    pd.DataFrame(np.zeros((3, 2)), columns=["speed", "rpm"]).to_csv(other, index=False)
    result = flowad("score", model, other, "-o", tmp_path / "s.csv")
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr


def test_fit_refuses_to_overwrite_a_data_folder(tmp_path, csv_data):
    train, _, _ = csv_data
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "keep.txt").write_text("x")
    result = flowad("fit", train, "-m", "iforest", "-o", folder, "-l", "label", "-q")
    assert result.returncode == 1 and "refusing to overwrite" in result.stderr
    assert (folder / "keep.txt").read_text() == "x"
