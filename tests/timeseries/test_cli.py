"""``flowad ts`` and ``flowad data vehicle`` through typer's test runner, ``--follow`` included."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flowad import io
from flowad.cli import app

runner = CliRunner()


def _run(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("ts")
    train, test, model = root / "train.csv", root / "test.csv", root / "model"
    assert _run("data", "vehicle", train, "--n", 1500, "--faults", "none", "--seed", 0).exit_code == 0
    result = _run("data", "vehicle", test, "--n", 600, "--faults", "spike,drift", "--per-kind", 1, "--seed", 1)
    assert result.exit_code == 0, result.output
    result = _run("ts", "fit", train, "-o", model, "-m", "iforest", "--window", 6, "--label-column", "label",
                  "--drop", "fault", "-q")
    assert result.exit_code == 0, result.output
    return train, test, model


def test_data_vehicle_writes_labels(files):
    frame = pd.read_csv(files[1])
    assert list(frame.columns) == ["speed", "rpm", "throttle", "engine_temp", "acceleration", "label", "fault"]
    assert len(frame) == 600 and frame["label"].sum() > 1
    assert set(frame.loc[frame["label"] == 1, "fault"]) == {"spike", "drift"}


def test_fit_then_batch_score(files, tmp_path):
    _, test, model = files
    detector = io.load(model)
    assert list(detector.feature_names_in_) == ["speed", "rpm", "throttle", "engine_temp", "acceleration"]
    result = _run("ts", "score", model, test, "-o", tmp_path / "s.csv", "-q")  # label/fault columns ignored
    assert result.exit_code == 0, result.output
    scores = pd.read_csv(tmp_path / "s.csv")
    frame = pd.read_csv(test)
    np.testing.assert_array_equal(scores["score"], detector.score_samples(frame[detector.feature_names_in_]))
    assert list(scores.columns) == ["row", "score", "p_value", "is_anomaly"]
    assert set(scores["is_anomaly"]) <= {0, 1} and len(scores) == 600


def test_follow_streams_scores_equal_to_batch(files, tmp_path):
    _, test, model = files
    text = test.read_text()
    result = _run("ts", "score", model, "--follow", input=text)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "row,score,p_value,is_anomaly" and len(lines) == 601
    streamed = pd.read_csv(pd.io.common.StringIO("\n".join(lines)))
    _run("ts", "score", model, test, "-o", tmp_path / "s.csv", "-q")
    batch = pd.read_csv(tmp_path / "s.csv")
    np.testing.assert_array_equal(streamed["row"], np.arange(600))
    np.testing.assert_array_equal(streamed["score"], batch["score"])
    np.testing.assert_array_equal(streamed["is_anomaly"], batch["is_anomaly"])


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["ts", "score", "MODEL", "--follow"], "speed,rpm\n1,2\n", "the header has 2 channels|not in the header"),
        (["ts", "score", "MODEL", "--follow"], "", "standard input is empty"),
        (["ts", "score", "MODEL"], None, "DATA is required"),
        (["ts", "score", "nomodel", "x.csv"], None, "no flowad model"),
        (["ts", "fit", "missing.csv", "-o", "m"], None, "series file not found"),
        (["ts", "fit", "TRAIN", "-o", "m2", "--window", "1", "--drop", "fault"], None, "window"),
    ],
)
def test_bad_input(files, args, stdin, message):
    train, _, model = files
    args = [str(model) if a == "MODEL" else str(train) if a == "TRAIN" else a for a in args]
    result = _run(*args, input=stdin)
    assert result.exit_code != 0
    assert isinstance(result.exception, (ValueError, FileNotFoundError))
    assert pytest.importorskip("re").search(message, str(result.exception)), result.exception


def test_follow_rejects_bad_line(files):
    _, test, model = files
    lines = test.read_text().splitlines()
    result = _run("ts", "score", model, "--follow", input="\n".join([*lines[:20], "1,2,x", ""]))
    assert isinstance(result.exception, ValueError) and "line 21" in str(result.exception)


def test_bench_writes_report(tmp_path):
    result = _run("study", "ts-bench", "-o", tmp_path, "--methods", "iforest", "--datasets", "vehicle_spike,yahoo",
                  "--seeds", "0", "--vehicle-train", 1500, "--vehicle-test", 2000, "--window", 8, "-q")
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "results.csv")
    assert set(rows["dataset"]) == {"vehicle_spike", "yahoo"} and (rows["roc_auc"] > 0.5).all()
    report = (tmp_path / "report.md").read_text()
    assert "point_adjusted_f1_optimistic" in report and "Isolation Forest" in report
    assert (tmp_path / "series_vehicle_spike.png").stat().st_size > 10_000
