"""A user's own messy CSV through fit, score and evaluate on the command line, joined back by id."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from flowad.datasets import sensor_table
from tests.cli.runner import flowad

FAST = ["--epochs", "8"]




def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def messy_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """An id, an ISO time stamp, a text category, a boolean, a gap, labelled anomalies."""
    return sensor_table(n, random_state=seed).rename(columns={"label": "is_anomaly"})


@pytest.fixture
def sensors(tmp_path):
    path = tmp_path / "sensors.csv"
    messy_frame().to_csv(path, index=False)
    return path


def test_the_journey_fit_score_evaluate_and_join_back(tmp_path, sensors):
    model = tmp_path / "model"
    result = flowad("fit", sensors, "-o", model, cwd=tmp_path)
    assert result.returncode == 1 and "column 'id'" in result.stderr and "Traceback" not in result.stderr
    result = flowad("fit", sensors, "-o", model, "--id-column", "id", "--drop", "timestamp", *FAST)
    assert result.returncode == 1 and "missing values in 4 rows" in result.stderr
    assert "--missing impute" in result.stderr
    result = flowad("fit", sensors, "-o", model, "--id-column", "id", "--drop", "timestamp", "--missing", "impute",
                    *FAST, "-q")
    assert result.returncode == 0, result.stderr
    assert "'is_anomaly' as the label column" in result.stdout and "10 rows labelled 1 left out" in result.stdout
    assert "5 features (site, door_open, temp, power" not in result.stdout  # the label is no feature
    assert "4 features (site, door_open, temp, power)" in result.stdout

    scores = tmp_path / "scores.csv"
    # the installed entry point, in its own process, as a user runs it
    result = flowad("score", model, sensors, "-o", scores, "--report", tmp_path / "scores.html", "-q",
                    new_process=True)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(scores)
    assert list(table.columns) == ["id", "score", "p_value", "is_anomaly"]
    joined = pd.read_csv(sensors).merge(table, on="id", validate="one_to_one")
    assert len(joined) == 400
    assert set(table["is_anomaly"]) <= {0, 1} and ((table["p_value"] > 0) & (table["p_value"] <= 1)).all()
    anomalies, normal = joined[joined.is_anomaly_x == 1], joined[joined.is_anomaly_x == 0]
    assert anomalies["score"].median() < normal["score"].quantile(0.05)  # the labelled anomalies score low
    assert anomalies["is_anomaly_y"].mean() > 5 * normal["is_anomaly_y"].mean()  # and are flagged far more often
    # the page lists the least normal rows with the values the model read, not the dropped columns
    page = (tmp_path / "scores.html").read_text()
    header = page[page.index("least normal rows"):].split("</thead>")[0]
    assert all(f">{name}<" in header for name in ("id", "site", "door_open", "temp", "power")), header
    assert ">timestamp<" not in header
    lowest = joined.sort_values("score").iloc[0]
    assert f"<td>{lowest['id']}</td>" in page and f"<td>{lowest['site']}</td>" in page

    metrics = tmp_path / "metrics.json"
    result = flowad("evaluate", model, sensors, "-o", metrics, "-q")  # the model knows its label column
    assert result.returncode == 0, result.stderr
    values = json.loads(metrics.read_text())
    assert values["roc_auc"] > 0.95 and values["n_anomalies"] == 10
    assert (tmp_path / "metrics.html").read_text().startswith("<!doctype html>")


def test_scores_as_parquet_by_extension_and_row_numbers_without_ids(tmp_path):
    frame = messy_frame().drop(columns=["id", "timestamp"]).dropna()
    data = tmp_path / "plain.csv"
    frame.to_csv(data, index=False)
    model = tmp_path / "m"
    assert flowad("fit", data, "-o", model, "-m", "iforest", "-q").returncode == 0
    result = flowad("score", model, data, "-o", tmp_path / "s.parquet", "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.parquet").read_bytes()[:4] == b"PAR1"
    table = pd.read_parquet(tmp_path / "s.parquet")
    assert list(table.columns) == ["row", "score", "p_value", "is_anomaly"]
    assert table["row"].tolist() == list(range(len(frame)))


def test_no_command_writes_over_its_inputs(tmp_path, sensors):
    model = tmp_path / "model"
    assert flowad("fit", sensors, "-o", model, "--id-column", "id", "--drop", "timestamp", "--missing", "impute",
                  "-m", "iforest", "-q").returncode == 0
    before = digest(sensors)
    for args in (["score", model, sensors, "-o", sensors],
                 ["score", model, sensors, "-o", model / "config.json"],
                 ["score", model, sensors, "--report", sensors],
                 ["evaluate", model, sensors, "-o", sensors],
                 ["evaluate", model, sensors, "--report", sensors],
                 ["fit", sensors, "-o", sensors]):
        result = flowad(*args)
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert digest(sensors) == before
    io_model = __import__("flowad").io.load(model)
    assert type(io_model).__name__ == "IsolationForestDetector"


def test_refit_keeps_other_files_in_the_model_folder(tmp_path, sensors):
    model = tmp_path / "model"
    args = ["fit", sensors, "-o", model, "--id-column", "id", "--drop", "timestamp", "--missing", "impute", "-q"]
    assert flowad(*args, "-m", "iforest").returncode == 0
    (model / "NOTES.txt").write_text("keep me")
    assert flowad(*args, "-m", "lof").returncode == 0
    assert (model / "NOTES.txt").read_text() == "keep me"


@pytest.mark.parametrize("content, message", [
    ("a;b;c\n1,5;2,0;3,25\n4,5;5,0;6,75\n7,5;8,0;9,5\n1,0;2,5;3,5\n", None),  # semicolons, decimal commas: read
    ("a,b,c\n", "header but no rows"),
    ("a,b,a\n1,2,3\n4,5,6\n", "duplicate column name"),
])
def test_files_as_people_write_them(tmp_path, content, message):
    data = tmp_path / "t.csv"
    data.write_text(content)
    result = flowad("fit", data, "-o", tmp_path / "m", "-m", "iforest", "-q")
    if message is None:
        assert result.returncode == 0, result.stderr
        assert "3 features (a, b, c)" in result.stdout
    else:
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_checks_run_before_training(tmp_path, sensors):
    result = flowad("fit", sensors, "-o", tmp_path / "m", "-m", "pyod_knn", "-q")
    assert result.returncode == 1 and "cannot be saved" in result.stderr
    result = flowad("fit", tmp_path, "-o", tmp_path / "m", "-q")
    assert result.returncode == 1 and "is a folder" in result.stderr
    folder = tmp_path / "not_a_model"
    folder.mkdir()
    (folder / "precious.txt").write_text("x")
    result = flowad("fit", sensors, "-o", folder, "-q")
    assert result.returncode == 1 and "refusing to overwrite" in result.stderr
    assert not (tmp_path / "m").exists()


def test_missing_extras_are_one_line_with_the_install_command(tmp_path, sensors):
    model = tmp_path / "m"
    assert flowad("fit", sensors, "-o", model, "--id-column", "id", "--drop", "timestamp", "--missing", "impute",
                  *FAST, "-q").returncode == 0
    blocker = tmp_path / "block"
    blocker.mkdir()
    for name in ("onnxscript", "dask", "distributed"):  # a module that fails to import, as if not installed
        (blocker / f"{name}.py").write_text("raise ImportError('not installed')\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(blocker)}
    result = flowad("export", model, "-o", tmp_path / "m.onnx", env=env)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == "error: ONNX export needs onnxscript, which is not installed: pip install " \
                                    "'flowad[scale]'"
    frame = messy_frame()
    frame.to_parquet(tmp_path / "d.parquet")
    result = flowad("score", model, tmp_path / "d.parquet", "--engine", "dask", "-o", tmp_path / "out", env=env)
    assert result.returncode == 1 and "pip install 'flowad[scale]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_command_takes_quiet_and_threads():
    import typer

    from flowad.cli import app

    def commands(group, prefix=""):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):  # a group (typer bundles its own click)
                yield from commands(cmd, f"{prefix}{name} ")
            else:
                yield prefix + name, cmd

    found = list(commands(typer.main.get_command(app)))
    assert len(found) > 20
    for name, cmd in found:
        options = {opt for p in cmd.params for opt in p.opts}
        assert {"--quiet", "--threads"} <= options, name


def test_a_model_fitted_in_python_scores_the_same_file_from_the_cli(tmp_path, sensors):
    from flowad import FlowDetector, io

    frame = pd.read_csv(sensors)
    normal = frame[frame.is_anomaly == 0]
    detector = FlowDetector(max_epochs=8, random_state=0).fit(normal, id_columns="id", drop="timestamp",
                                                               missing="impute")
    io.save(detector, tmp_path / "m")
    python = detector.score_table(frame)
    assert flowad("score", tmp_path / "m", sensors, "-o", tmp_path / "s.csv", "-q").returncode == 0
    cli = pd.read_csv(tmp_path / "s.csv")
    assert list(python.columns) == list(cli.columns) == ["id", "score", "p_value", "is_anomaly"]
    np.testing.assert_allclose(cli["score"], python["score"], rtol=1e-12)
    assert (cli["is_anomaly"] == python["is_anomaly"]).all()
