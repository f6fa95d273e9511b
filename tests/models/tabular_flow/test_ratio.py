"""FlowRatioClassifier: the log density ratio of two flows, thresholded at a background acceptance."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from flowad import FlowRatioClassifier, io

MU = np.array([1.5, -1.0])


def two_gaussians(n_background: int, n_signal: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Background N(0, I), signal N(MU, I): the exact log ratio is ``x @ MU - |MU|^2 / 2``."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(size=(n_background, 2)), rng.normal(size=(n_signal, 2)) + MU]
    return X, np.r_[np.zeros(n_background, np.int64), np.ones(n_signal, np.int64)]


def exact_log_ratio(X: np.ndarray) -> np.ndarray:
    return X @ MU - 0.5 * MU @ MU


@pytest.fixture(scope="module")
def fitted() -> FlowRatioClassifier:
    X, y = two_gaussians(4000, 4000)
    return FlowRatioClassifier(random_state=0).fit(X, y)


def test_recovers_the_log_ratio_of_two_known_gaussians(fitted):
    X = np.random.default_rng(5).normal(size=(4000, 2)) * 0.8 + MU / 2  # where both classes have mass
    estimate, truth = fitted.log_density_ratio(X), exact_log_ratio(X)
    assert np.corrcoef(estimate, truth)[0, 1] > 0.99
    assert np.abs(estimate - truth).mean() < 0.25  # the truth spans about +-4 nats here


@pytest.mark.parametrize("acceptance", [0.02, 0.05, 0.1])
def test_thresholds_accept_the_requested_share_of_new_background_rows(fitted, acceptance):
    fresh = np.random.default_rng(7).normal(size=(40_000, 2))
    accepted = (fitted.decision_scores(fresh) > fitted.threshold_for(acceptance)).mean()
    n_calibration = fitted.calibration_.n
    # binomial spread of the calibration rows' quantile and of the fresh rows, 4 standard deviations
    spread = 4 * np.sqrt(acceptance * (1 - acceptance) * (1 / n_calibration + 1 / len(fresh)))
    assert abs(accepted - acceptance) < spread
    assert (fitted.background_p_values(fresh) <= acceptance).mean() == pytest.approx(accepted)


def test_the_ratio_ranks_like_the_bayes_optimal_score():
    from sklearn.metrics import roc_auc_score

    X, y = two_gaussians(3000, 600, seed=1)
    model = FlowRatioClassifier(random_state=0).fit(X, y)
    X_test, y_test = two_gaussians(3000, 3000, seed=2)
    optimal = roc_auc_score(y_test, exact_log_ratio(X_test))
    assert roc_auc_score(y_test, model.decision_scores(X_test)) > optimal - 0.01
    assert optimal == pytest.approx(norm.cdf(np.linalg.norm(MU) / np.sqrt(2)), abs=0.01)


def test_classifier_contract_with_string_labels():
    X, y = two_gaussians(800, 300, seed=3)
    labels = np.where(y == 1, "gamma", "hadron")  # sorted: "gamma" < "hadron", so gamma is the background
    model = FlowRatioClassifier(max_epochs=20, random_state=0).fit(X, labels)
    assert list(model.classes_) == ["gamma", "hadron"]
    proba = model.predict_proba(X[:50])
    assert proba.shape == (50, 2) and np.allclose(proba.sum(axis=1), 1.0)
    predicted = model.predict(X[:50])
    assert set(predicted) <= {"gamma", "hadron"}
    assert np.array_equal(predicted == "hadron", model.decision_function(X[:50]) > 0)
    # the prior moves the probabilities, not the decisions at the acceptance
    other = FlowRatioClassifier(max_epochs=20, random_state=0, prior=0.5).fit(X, labels)
    assert np.array_equal(other.predict(X[:50]), predicted)
    assert not np.allclose(other.predict_proba(X[:50]), proba)


def test_shrinkage_keeps_few_signal_rows_from_inventing_a_density():
    X, y = two_gaussians(3000, 8, seed=4)
    rows = np.random.default_rng(8).normal(size=(2000, 2))
    settings = {"shrunk": {}, "unshrunk": {"shrinkage": 0.0}, "fresh": {"base": "none"}}
    size = {name: np.quantile(np.abs(FlowRatioClassifier(random_state=0, **params).fit(X, y).log_density_ratio(rows)),
                              0.9) for name, params in settings.items()}
    assert size["shrunk"] < 0.25 * size["unshrunk"] < 0.25 * size["fresh"]  # measured: 1.0, 16, 77 nats


def test_novelty_flags_rows_unlike_both_classes_and_keeps_the_known_ranking():
    from sklearn.metrics import roc_auc_score

    X, y = two_gaussians(3000, 600, seed=1)
    unlike_both = np.random.default_rng(3).normal(size=(300, 2)) * 0.5 + np.array([-6.0, 6.0])
    X_test, y_test = two_gaussians(3000, 3000, seed=2)
    pure = FlowRatioClassifier(random_state=0).fit(X, y)
    mixed = FlowRatioClassifier(novelty=0.1, random_state=0).fit(X, y)
    assert (mixed.decision_scores(unlike_both) > mixed.threshold_for(0.05)).mean() > 0.95
    assert (pure.decision_scores(unlike_both) > pure.threshold_for(0.05)).mean() < 0.05  # measured: 0 of 300
    known = {name: roc_auc_score(y_test, model.decision_scores(X_test)) for name, model in
             (("pure", pure), ("mixed", mixed))}
    assert known["mixed"] > known["pure"] - 0.01


def test_dataframes_keep_feature_names(tmp_path):
    X, y = two_gaussians(500, 200, seed=6)
    frame = pd.DataFrame(X, columns=["width", "length"])
    model = FlowRatioClassifier(max_epochs=5, random_state=0).fit(frame, y)
    assert list(model.feature_names_in_) == ["width", "length"]
    loaded = io.load(io.save(model, tmp_path / "model"))
    assert list(loaded.feature_names_in_) == ["width", "length"]
    with pytest.raises(ValueError, match="feature names"):
        loaded.decision_scores(frame[["length", "width"]])


def test_saved_model_scores_the_same_in_a_fresh_process(fitted, tmp_path):
    path = io.save(fitted, tmp_path / "model")
    X = np.random.default_rng(9).normal(size=(200, 2))
    np.save(tmp_path / "X.npy", X)
    script = ("import sys, numpy as np; from flowad import io; m = io.load(sys.argv[1]); "
              "np.save(sys.argv[2], m.decision_scores(np.load(sys.argv[3])))")
    subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "s.npy"), str(tmp_path / "X.npy")],
                   check=True, timeout=300)
    assert np.array_equal(np.load(tmp_path / "s.npy"), fitted.decision_scores(X))
    loaded = io.load(path)
    assert loaded.threshold_ == fitted.threshold_ and list(loaded.classes_) == [0, 1]


@pytest.mark.parametrize("novelty", [0.0, 0.3])
def test_onnx_export_runs_the_same_graph(fitted, tmp_path, novelty):
    pytest.importorskip("onnxruntime")
    from flowad.deploy.onnx_export import export_onnx, onnx_scores

    model = fitted
    if novelty:  # the same flows, with a novelty part in the signal density
        model = io.load(io.save(fitted, tmp_path / "m"))
        model.set_params(novelty=novelty)
        model.scoring_ = model._scoring(model.scoring_.signal.flow, model.scoring_.background.flow)
    X = np.r_[np.random.default_rng(10).normal(size=(300, 2)), [[-8.0, 9.0]]]
    path = export_onnx(model, tmp_path / "ratio.onnx")
    expected = model.decision_scores(X)
    assert np.allclose(onnx_scores(path, X), expected, rtol=1e-5, atol=1e-5)  # float32 networks


@pytest.mark.parametrize(("X", "y", "message"), [
    (np.zeros((10, 2)), np.r_[[0] * 5, [1] * 4, [2]], "two classes"),
    (np.zeros((10, 2)), np.zeros(10), "two classes"),
    (np.zeros((10, 2)), np.r_[[0] * 3, [1] * 7], "at least 4 rows as background"),
    (np.r_[[[np.nan, 0.0]], np.zeros((9, 2))], np.r_[[0] * 6, [1] * 4], "NaN"),
])
def test_bad_input_is_refused_with_a_message(X, y, message):
    with pytest.raises(ValueError, match=message):
        FlowRatioClassifier(max_epochs=1).fit(X, y)


def test_bad_parameters_are_refused():
    X, y = two_gaussians(100, 50)
    with pytest.raises(ValueError, match="background_acceptance"):
        FlowRatioClassifier(background_acceptance=0.9).fit(X, y)
    with pytest.raises(ValueError, match="base"):
        FlowRatioClassifier(base="signal").fit(X, y)
    with pytest.raises(ValueError, match="novelty"):
        FlowRatioClassifier(novelty=1.0).fit(X, y)
    model = FlowRatioClassifier(max_epochs=2, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="background_acceptance"):
        model.threshold_for(1.5)
