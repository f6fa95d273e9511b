"""WindowDetector: streaming == batch, model files, bad input, and a detection floor on broken couplings."""

import json

import numpy as np
import pytest

from flowad import IsolationForestDetector, WindowDetector, io
from flowad.datasets import vehicle_sensors
from flowad.evaluation.ts_metrics import evaluate_series
from flowad.timeseries import StreamingScorer
from tests.conftest import FAST


@pytest.fixture(scope="module")
def waves():
    """Two coupled noisy sine channels: 1,500 training points and 600 test points."""
    rng = np.random.default_rng(0)
    t = np.arange(2100) / 8.0
    series = np.c_[np.sin(t), np.cos(t)] + 0.05 * rng.normal(size=(2100, 2))
    return series[:1500], series[1500:]


@pytest.fixture(scope="module")
def flow_model(waves):
    params = {"transforms": 2, "hidden_features": (32, 32), "max_epochs": 40}
    return WindowDetector("maf", window=8, stride=3, point_score="mean", detector_params=params,
                          random_state=0).fit(waves[0])


@pytest.fixture(scope="module")
def forest_model(waves):
    return WindowDetector(IsolationForestDetector(n_estimators=30, random_state=0), window=6).fit(waves[0])


def _streamed(detector, series, sizes):
    scorer, parts, start, i = StreamingScorer(detector), [], 0, 0
    while start < len(series):
        size = sizes[i % len(sizes)]
        parts.append(scorer.partial_score(series[start : start + size]))
        assert len(scorer._buffer) < detector.window and len(scorer._acc) < detector.window  # ring, flat memory
        start, i = start + size, i + 1
    parts.append(scorer.flush())
    return np.concatenate(parts)


@pytest.mark.parametrize("sizes", [[1], [5, 0, 13, 2], [600]])
def test_streaming_equals_batch(waves, flow_model, forest_model, sizes):
    test = waves[1]
    # scikit-learn models: bit for bit
    np.testing.assert_array_equal(_streamed(forest_model, test, sizes), forest_model.score_samples(test))
    # float64 flow: up to the rounding of matrix products over different numbers of windows
    np.testing.assert_allclose(_streamed(flow_model, test, sizes), flow_model.score_samples(test), rtol=1e-12)
    chunks = (test[i : i + 37] for i in range(0, len(test), 37))
    np.testing.assert_array_equal(np.concatenate(list(forest_model.stream(chunks))), forest_model.score_samples(test))


def test_streaming_scorer_edges(forest_model):
    scorer = forest_model.streaming_scorer()
    assert scorer.partial_score(np.empty((0, 2))).shape == (0,) and scorer.flush().shape == (0,)
    assert scorer.partial_score(np.zeros(2)).shape == (0,)  # one 2-channel point; nothing final yet
    with pytest.raises(ValueError, match="fewer than window"):
        scorer.flush()
    with pytest.raises(ValueError, match="chunk has 3 channels"):
        scorer.partial_score(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="chunk contains NaN"):
        scorer.partial_score(np.array([[0.0, np.nan]]))


def test_scores_threshold_and_predictions(waves, flow_model):
    train, test = waves
    scores = flow_model.score_samples(test)
    assert scores.shape == (600,) and np.isfinite(scores).all()
    np.testing.assert_array_equal(flow_model.decision_function(test), scores - flow_model.offset_)
    np.testing.assert_array_equal(flow_model.predict(test) == -1, scores < flow_model.offset_)
    broken = test.copy()
    broken[300:340, 1] *= -1  # the cosine no longer follows the sine
    assert flow_model.score_samples(broken)[300:340].mean() < scores[300:340].mean() - 5
    assert flow_model.window_scores(test).shape == ((600 - 8) // 3 + 1,)
    # univariate series are (T,) or (T, 1)
    uni = WindowDetector("iforest", window=5, random_state=0).fit(train[:, 0])
    np.testing.assert_array_equal(uni.score_samples(test[:, 0]), uni.score_samples(test[:, :1]))


def test_flow_detects_broken_coupling():
    """Detection floor: RPM that stops following speed. The flow ranks the faulty points well above
    chance and far above Isolation Forest on the same windows (per-channel splits cannot see it)."""
    train = vehicle_sensors(4000, faults=(), random_state=0).values
    drive = vehicle_sensors(3000, faults=("coupling",), n_per_kind=3, random_state=5)
    flow = WindowDetector("maf", window=8, random_state=0,
                          detector_params={"transforms": 2, "hidden_features": (32, 32), "max_epochs": 30})
    forest = WindowDetector("iforest", window=8, random_state=0)
    flow_m, forest_m = (evaluate_series(drive.labels, -s, s < d.offset_)
                        for d in (flow, forest) for s in [d.fit(train).score_samples(drive.values)])
    share = drive.labels.mean()
    assert flow_m.roc_auc > 0.65 and flow_m.pr_auc > 2.5 * share, flow_m
    assert flow_m.roc_auc > forest_m.roc_auc + 0.2 and flow_m.pr_auc > 2 * forest_m.pr_auc, (flow_m, forest_m)


@pytest.mark.parametrize("name", ["maf", "iforest-instance", "ae", "elliptic", "ocsvm"])
def test_model_file_round_trip(tmp_path, waves, name):
    train, test = waves
    if name == "iforest-instance":
        detector = WindowDetector(IsolationForestDetector(n_estimators=20, random_state=1), window=5, difference=1)
    else:
        detector = WindowDetector(name, window=5, detector_params=FAST.get(name), random_state=0)
    detector.fit(train[:600])
    io.save(detector, tmp_path / "m")
    loaded = io.load(tmp_path / "m")
    params, saved = loaded.get_params(), detector.get_params()  # deep: a nested detector's own parameters too
    assert type(loaded) is WindowDetector and type(params.pop("detector")) is type(saved.pop("detector"))
    assert params == saved
    np.testing.assert_array_equal(loaded.score_samples(test), detector.score_samples(test))
    assert loaded.offset_ == detector.offset_ and loaded.scaler_.difference == detector.scaler_.difference


def test_model_file_refuses_edits(tmp_path, forest_model):
    io.save(forest_model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / io.CONFIG_FILE).read_text())
    config["params"]["window"] = 7
    (tmp_path / "m" / io.CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises(ValueError, match="modified"):
        io.load(tmp_path / "m")


def test_feature_names_are_checked(waves):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(waves[0], columns=["speed", "rpm"])
    detector = WindowDetector("iforest", window=4, random_state=0).fit(frame)
    assert list(detector.feature_names_in_) == ["speed", "rpm"]
    with pytest.raises(ValueError, match="fitted on"):
        detector.score_samples(frame[["rpm", "speed"]])


@pytest.mark.parametrize(
    ("params", "series", "message"),
    [
        ({"window": 1}, None, "window"),
        ({"window": 0}, None, "window"),
        ({"window": 4, "stride": 5}, None, "stride"),
        ({"window": 2, "difference": 1}, None, "window must be at least 3"),
        ({"point_score": "median"}, None, "point_score"),
        ({"detector": "kmeans"}, None, "detector must be one of"),
        ({"contamination": 0.9}, None, "contamination"),
        ({"window": 50}, np.zeros((40, 2)), "at least 51 points"),
        ({"window": 30}, np.zeros((60, 2)), "too short to hold out"),
        ({}, np.r_[np.zeros(50), np.nan], "NaN"),
        ({}, np.zeros((50, 2, 2)), "shape"),
    ],
)
def test_bad_fit_input(params, series, message):
    series = np.random.default_rng(0).normal(size=(300, 2)) if series is None else series
    with pytest.raises(ValueError, match=message):
        WindowDetector(**{"detector": "iforest", **params}).fit(series)


def test_bad_score_input(forest_model):
    with pytest.raises(ValueError, match="3 channels, but the model was fitted on 2"):
        forest_model.score_samples(np.zeros((50, 3)))
    with pytest.raises(ValueError, match="at least 6 points"):
        forest_model.score_samples(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        forest_model.score_samples(np.full((50, 2), np.inf))
    with pytest.raises(ValueError, match="not fitted|fit"):
        WindowDetector().score_samples(np.zeros((50, 2)))
