"""The benchmark runner: rows, resume, report files, PyOD peers present or absent."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from flowad.evaluation.bench import BenchConfig, resolve_datasets, run_bench
from flowad.evaluation.report import write_report
from flowad.models.baselines import pyod_peers as peers

SETS = ["wine", "glass"]


def _config(**changes):
    base = dict(suites=["classical"], datasets=SETS, detectors=["iforest", "elliptic"], seeds=[0],
                protocols=["oneclass", "unsupervised"], roc_datasets=["wine"])
    return BenchConfig(**{**base, **changes})


def test_rows_resume_and_report(tmp_path):
    calls = []
    frame = run_bench(_config(), tmp_path, on_job=lambda done, total, what: calls.append((done, total)))
    assert len(frame) == 2 * 2 * 2 and calls[-1] == (8, 8)
    expected = {"dataset", "n", "d", "anomaly_share", "protocol", "detector", "params", "seed", "roc_auc",
                "pr_auc", "precision", "recall", "f1", "fit_seconds", "score_seconds", "peak_memory_mb"}
    assert expected <= set(frame.columns)
    assert (frame["status"] == "ok").all() and frame["roc_auc"].between(0, 1).all()
    wine = frame[frame["dataset"] == "wine"].iloc[0]
    assert wine["n"] == 129 and wine["d"] == 13 and wine["anomaly_share"] == pytest.approx(10 / 129)
    # the unsupervised protocol tests on 30% of the rows, the one-class on 40% of normals + anomalies
    sizes = frame[frame["dataset"] == "wine"].groupby("protocol")["n_test"].first()
    assert sizes["unsupervised"] == 39 and sizes["oneclass"] == 10 + round(0.4 * 119)

    # resume: the same run again does nothing; one more detector runs only its own jobs
    calls.clear()
    again = run_bench(_config(detectors=["iforest", "elliptic", "lof"]), tmp_path,
                      on_job=lambda done, total, what: calls.append(what))
    assert len(again) == 12
    assert [c for c in calls if c != "done"] and all("lof" in c for c in calls if c != "done")
    assert len(pd.read_csv(tmp_path / "results.csv")) == 12

    md, html = write_report(tmp_path)
    text = md.read_text()
    assert "## Protocol `oneclass`" in text and "## Protocol `unsupervised`" in text and "avg_rank" in text
    page = html.read_text()
    assert page.count("data:image/png;base64,") >= 4 and "<table" in page and "src=\"http" not in page
    for name in ("ranks_oneclass.png", "roc_wine_oneclass.png", "machine.json", "config.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_damaged_last_line_is_rerun(tmp_path):
    run_bench(_config(datasets=["wine"], protocols=["oneclass"]), tmp_path)
    path = tmp_path / "results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # a write cut off mid-line
    frame = run_bench(_config(datasets=["wine"], protocols=["oneclass"]), tmp_path)
    assert len(frame) == 2 and set(frame["detector"]) == {"iforest", "elliptic"}


def test_rows_record_the_version_and_the_report_names_a_mix(tmp_path):
    from flowad import __version__

    run_bench(_config(datasets=["wine"], protocols=["oneclass"]), tmp_path)
    path = tmp_path / "results.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [row["flowad_version"] for row in rows] == [__version__] * 2
    machine = json.loads((tmp_path / "machine.json").read_text())
    (tmp_path / "machine.json").write_text(json.dumps({**machine, "flowad": "9.9.9"}))  # a later run's
    md, _ = write_report(tmp_path)
    assert "several flowad versions" not in md.read_text() and f"flowad {__version__}." in md.read_text()

    # rows kept from an older version (or from before versions were recorded), then resumed
    rows[0]["flowad_version"] = "0.0.1"
    del rows[1]["flowad_version"]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    run_bench(_config(datasets=["wine"], protocols=["oneclass"], detectors=["iforest", "elliptic", "lof"]),
              tmp_path)
    md, html = write_report(tmp_path)
    note = (f"Rows from several flowad versions: 0.0.1: {rows[0]['detector']}; {__version__}: lof; "
            f"not recorded: {rows[1]['detector']}.")
    assert note in md.read_text() and note in html.read_text()
    assert f"flowad {__version__}." not in md.read_text()


def test_failures_are_rows_not_crashes(tmp_path, monkeypatch):
    from flowad.models.baselines.sklearn_adapters import EllipticEnvelopeDetector

    def broken(self, X, y=None):
        raise RuntimeError("singular covariance (simulated)")

    monkeypatch.setattr(EllipticEnvelopeDetector, "fit", broken)
    frame = run_bench(_config(datasets=["wine"], protocols=["oneclass"]), tmp_path)
    failed = frame[frame["detector"] == "elliptic"].iloc[0]
    assert failed["status"] == "error" and "simulated" in failed["error"]
    assert (frame[frame["detector"] == "iforest"]["status"] == "ok").all()


def test_suites_and_names(tmp_path):
    np.savez(tmp_path / "7_mine.npz", X=np.zeros((10, 2)), y=np.r_[np.zeros(9), 1])
    specs = resolve_datasets([str(tmp_path), "builtin"])
    assert [s.name for s in specs] == ["mine", "breast_cancer"]
    with pytest.raises(ValueError, match="not found"):
        resolve_datasets(["classical"], ["no_such_set"])
    with pytest.raises(ValueError, match="suite must be"):
        resolve_datasets(["/no/such/folder"])
    with pytest.raises(ValueError, match="protocol"):
        run_bench(_config(protocols=["semi"]), tmp_path / "x")


def test_peak_memory_sees_an_allocation():
    # in a fresh process: a long test session holds freed, still resident memory that a new block reuses
    script = ("import numpy as np\nfrom flowad.evaluation.bench import PeakMemory\n"
              "with PeakMemory() as memory:\n    block = np.ones(50_000_000 // 8)\n    block.sum()\n"
              "print(memory.peak_mb)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert 30 < float(result.stdout.strip().splitlines()[-1]) < 200


def test_pyod_peers_run_when_installed(tmp_path):
    pytest.importorskip("pyod")
    frame = run_bench(_config(datasets=["wine"], protocols=["oneclass"], detectors=["pyod_ecod", "pyod_knn"]),
                      tmp_path)
    assert (frame["status"] == "ok").all() and frame["roc_auc"].min() > 0.5


def test_pyod_absent_is_a_clean_skip(monkeypatch):
    monkeypatch.setattr(peers, "pyod_installed", lambda: False)
    assert peers.available_peers() == []
    from flowad.models import registry

    monkeypatch.setattr(registry, "available_peers", peers.available_peers)
    with pytest.raises(ValueError, match="needs PyOD"):
        registry.make_detector("pyod_ecod")


def test_cli_bench(tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "flowad", "bench", "--datasets", "wine", "--detectors",
                             "iforest", "--seeds", "0", "-o", str(tmp_path), "-q"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["detector"] == "iforest"
    assert (tmp_path / "report.html").exists()


def test_a_detector_failing_everywhere_is_left_out_of_the_ranking(tmp_path, monkeypatch):
    from flowad.evaluation.report import summarize
    from flowad.models.baselines.sklearn_adapters import EllipticEnvelopeDetector

    monkeypatch.setattr(EllipticEnvelopeDetector, "fit", lambda self, X, y=None: 1 / 0)
    frame = run_bench(_config(protocols=["oneclass"]), tmp_path)
    s = summarize(frame, "oneclass")
    assert s["n_complete"] == 2 and list(s["summary"].index) == ["iforest"]
    assert len(s["failures"]) == 2


@pytest.mark.parametrize("name", ["pyod_inne", "pyod_loda", "pyod_cblof", "pyod_pca", "pyod_mcd", "pyod_kde",
                                  "pyod_dif"])
def test_every_new_pyod_peer_separates_far_rows(name):
    pytest.importorskip("pyod")
    from flowad import make_detector
    from flowad.evaluation import roc_auc

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    test = np.vstack([rng.normal(size=(40, 4)), rng.normal(size=(10, 4)) + 6.0])
    y = np.r_[np.zeros(40), np.ones(10)]
    small = {"pyod_dif": {"n_ensemble": 10, "n_estimators": 2}, "pyod_inne": {"n_estimators": 20}}  # seconds
    detector = make_detector(name, params=small.get(name), random_state=0)
    scores = detector.fit(X).score_samples(test)
    # DIF's random tanh networks saturate on far rows, so it ranks them less well than the others
    assert roc_auc(y, -scores) > (0.7 if name == "pyod_dif" else 0.95)
