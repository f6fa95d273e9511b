"""The estimator contract's new parts: DataFrames in, p-values, score tables, finite scores."""

import numpy as np
import pandas as pd
import pytest

from flowad import (
    EllipticEnvelopeDetector,
    FlowDetector,
    IsolationForestDetector,
    LOFDetector,
    OneClassSVMDetector,
    io,
)

BASELINES = [IsolationForestDetector(random_state=0), LOFDetector(), EllipticEnvelopeDetector(random_state=0),
             OneClassSVMDetector()]


@pytest.mark.parametrize("detector", BASELINES, ids=lambda d: type(d).__name__)
def test_an_extreme_value_is_a_finite_score_an_anomaly_and_saves(tmp_path, detector):
    X = np.random.default_rng(0).normal(size=(300, 3))
    X[0, 1] = 1e300
    detector.fit(X)
    scores = detector.score_samples(X[:3])
    assert np.isfinite(scores).all() and detector.predict(X[:1])[0] == -1
    probe = X[1:4].copy()
    probe[0, 0] = 1e200
    assert np.isfinite(detector.score_samples(probe)).all()
    if not isinstance(detector, IsolationForestDetector):  # its splits lie inside the training range, so a
        assert detector.predict(probe)[0] == -1            # value beyond it is as isolated as the extreme one
    io.save(detector, tmp_path / "m")
    np.testing.assert_array_equal(io.load(tmp_path / "m").score_samples(probe), detector.score_samples(probe))


def test_p_values_match_predictions_and_the_score_table():
    X = np.random.default_rng(0).normal(size=(400, 2))
    detector = IsolationForestDetector(random_state=0, contamination=0.05).fit(X)
    probe = np.random.default_rng(1).normal(size=(500, 2)) * 1.5
    p = detector.p_values(probe)
    np.testing.assert_array_equal(p <= 0.05, detector.predict(probe) == -1)
    table = detector.score_table(probe)
    assert list(table.columns) == ["row", "score", "p_value", "is_anomaly"]
    np.testing.assert_array_equal(table["is_anomaly"], (detector.predict(probe) == -1).astype(int))
    assert p.min() >= 1 / (detector.calibration_.n + 1) and p.max() <= 1


def test_a_dataframe_in_keeps_its_schema_and_scores_by_name():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(300), "kind": rng.choice(["a", "b"], 300), "x": rng.normal(size=300),
                          "ok": rng.random(300) < 0.5})
    detector = FlowDetector(max_epochs=3, transforms=2, hidden_features=(8, 8), calibration="split",
                            random_state=0).fit(frame, id_columns="id")
    assert list(detector.feature_names_in_) == ["kind", "x", "ok"] and detector.n_features_in_ == 3
    reordered = frame[["ok", "x", "id", "kind"]].assign(other=1)
    np.testing.assert_array_equal(detector.score_samples(reordered), detector.score_samples(frame))
    table = detector.score_table(frame)
    assert list(table.columns) == ["id", "score", "p_value", "is_anomaly"]
    with pytest.raises(TypeError, match="pass a pandas DataFrame"):
        detector.score_samples(frame[["kind", "x", "ok"]].to_numpy())
    with pytest.raises(TypeError, match="pass X as a pandas DataFrame"):
        FlowDetector().fit(np.zeros((10, 2)), drop="x")


def test_labelled_rows_in_training_are_named_in_a_warning():
    frame = pd.DataFrame({"x": np.random.default_rng(0).normal(size=100), "label": [0] * 95 + [1] * 5})
    with pytest.warns(UserWarning, match="5 training row.*fitted as normal rows"):
        IsolationForestDetector(random_state=0).fit(frame)
