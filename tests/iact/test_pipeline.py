"""IACT gamma/hadron pipeline: separation floors, invalid events, model files, metrics, MAGIC loader."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from flowad import io
from flowad.datasets import MAGIC_GAMMA_FEATURES, load_magic_gamma
from flowad.evaluation.iact_metrics import (
    cut_from_training,
    efficiencies_at_cut,
    evaluate_separation,
    gamma_efficiency_at_hadron_acceptance,
    max_quality_factor,
    quality_factor,
)
from flowad.evaluation.iact_report import write_iact_report
from flowad.iact import load_camera, simulate_events
from flowad.iact.pipeline import (
    FLOW_FEATURES,
    INVALID_GAMMANESS,
    GammaHadronSeparator,
    HillasFeatures,
)
from flowad.models import FlowDetector, FlowRatioClassifier


def tiny_flow(**params) -> FlowDetector:
    return FlowDetector(transforms=2, hidden_features=(16, 16), max_epochs=20, random_state=0, **params)


@pytest.fixture(scope="module")
def camera():
    return load_camera("magic")


@pytest.fixture(scope="module")
def events(camera):
    train = simulate_events(camera, 600, random_state=0)[:2]
    test = simulate_events(camera, 600, random_state=1)[:2]
    return train, test


@pytest.fixture(scope="module")
def fitted(camera, events):
    (images, labels), _ = events
    return GammaHadronSeparator(camera, detector=tiny_flow()).fit(images, labels)


def test_oneclass_gamma_flow_separates_simulated_events(fitted, events):
    _, (images, labels) = events
    gammaness, valid = fitted.gammaness(images, return_valid=True)
    assert gammaness.shape == (600,) and np.isfinite(gammaness).all()
    metrics = evaluate_separation(labels, gammaness, cut=fitted.cut_, valid=valid)
    assert metrics.roc_auc > 0.9
    assert metrics.gamma_efficiency[0.1] > 0.8
    assert metrics.n_gamma + metrics.n_hadron + metrics.n_invalid_gamma + metrics.n_invalid_hadron == 600
    assert 0.75 < metrics.cut_gamma_efficiency < 1.0  # the cut keeps about 90% of training gammas
    assert fitted.features_ == FLOW_FEATURES
    np.testing.assert_array_equal(fitted.predict(images), np.where(valid & (gammaness > fitted.cut_), 0, 1))


def test_twoclass_trains_with_hadrons_as_negatives(camera, events):
    (images, labels), (test, y_test) = events
    separator = GammaHadronSeparator(camera, detector=tiny_flow(), mode="twoclass").fit(images, labels)
    assert separator.detector_.negatives == "labels"
    assert separator.n_train_ > int((labels == 0).sum())  # more than all gammas: hadrons are in the training rows
    gammaness, valid = separator.gammaness(test, return_valid=True)
    assert np.isfinite(gammaness).all()
    assert evaluate_separation(y_test, gammaness, valid=valid).roc_auc > 0.97


def test_ratio_mode_fits_a_flow_per_class_and_cuts_on_held_out_hadrons(camera, events, tmp_path):
    (images, labels), (test, y_test) = events
    detector = FlowRatioClassifier(transforms=2, hidden_features=(16, 16), max_epochs=20, random_state=0)
    separator = GammaHadronSeparator(camera, detector=detector, mode="ratio", train_efficiency=0.95).fit(images, labels)
    assert separator.detector_.background_acceptance == pytest.approx(0.05)
    assert list(separator.detector_.classes_) == [0, 1]  # 0: hadron (background), 1: gamma
    assert separator.cut_ == separator.detector_.threshold_
    gammaness, valid = separator.gammaness(test, return_valid=True)
    assert np.isfinite(gammaness).all()
    assert evaluate_separation(y_test, gammaness, valid=valid).roc_auc > 0.93  # two tiny flows, 270 hadrons
    loaded = io.load(io.save(separator, tmp_path / "separator"))
    np.testing.assert_array_equal(loaded.gammaness(test), separator.gammaness(test))
    with pytest.raises(ValueError, match="y is required"):
        GammaHadronSeparator(camera, mode="ratio").fit(images)
    with pytest.raises(ValueError, match="needs a FlowRatioClassifier"):
        GammaHadronSeparator(camera, detector=tiny_flow(), mode="ratio").fit(images, labels)


class NearestMean:
    """A supervised peer: score = distance to the hadron mean minus distance to the gamma mean."""

    def __init__(self, contamination=0.1):
        self.contamination = contamination

    def get_params(self, deep=True):
        return {"contamination": self.contamination}

    def set_params(self, **params):
        self.__dict__.update(params)
        return self

    def fit(self, X, y):
        self.means_ = X[y == 0].mean(axis=0), X[y == 1].mean(axis=0)
        self.offset_ = float(np.quantile(self.score_samples(X[y == 0]), self.contamination))
        return self

    def score_samples(self, X):
        gamma, hadron = self.means_
        return np.linalg.norm(X - hadron, axis=1) - np.linalg.norm(X - gamma, axis=1)


def test_twoclass_mode_uses_a_supervised_peer_as_it_is_and_refuses_one_class_detectors(camera, events):
    from flowad.models import IsolationForestDetector

    (images, labels), (test, y_test) = events
    separator = GammaHadronSeparator(camera, detector=NearestMean(), mode="twoclass").fit(images, labels)
    assert isinstance(separator.detector_, NearestMean) and separator.cut_ == separator.detector_.offset_
    gammaness, valid = separator.gammaness(test, return_valid=True)
    assert evaluate_separation(y_test, gammaness, valid=valid).roc_auc > 0.8
    with pytest.raises(ValueError, match="one-class IsolationForestDetector"):
        GammaHadronSeparator(camera, detector=IsolationForestDetector(), mode="twoclass").fit(images, labels)


def test_train_on_hadron_gammaness_is_minus_hadron_likelihood(camera, events):
    (images, labels), (test, _) = events
    separator = GammaHadronSeparator(camera, detector=tiny_flow(), train_on="hadron").fit(images, labels)
    table = separator.feature_table(test)
    gammaness, valid = separator.gammaness(table, return_valid=True)
    hadron_score = separator.gammaness(table[valid].reset_index(drop=True))
    np.testing.assert_allclose(gammaness[valid], hadron_score)
    # the training rows are the valid hadrons only; the cut keeps ~90% of them as hadrons
    assert separator.n_train_ == int(((labels == 1) & separator.feature_table(images)["valid"]).sum())
    assert separator.cut_ == -separator.detector_.offset_


def test_invalid_events_are_counted_never_nan(camera, events):
    (images, labels), _ = events
    blank = np.zeros((3, camera.n_pixels), np.float32)  # nothing survives the cleaning
    single = np.zeros((2, camera.n_pixels), np.float32)
    single[:, 100] = 50.0  # one bright pixel: no boundary neighbour
    pair = np.zeros((1, camera.n_pixels), np.float32)
    pair[0, [0, camera.neighbor_lists()[0][0]]] = 30.0  # two pixels: below min_pixels
    bad = np.vstack([blank, single, pair])
    table = HillasFeatures(camera).transform(bad)
    assert not table["valid"].any() and np.isfinite(table.drop(columns="valid").to_numpy()).all()
    separator = GammaHadronSeparator(camera, detector=tiny_flow())
    separator.fit(np.vstack([images, bad]), np.r_[labels, np.zeros(len(bad), int)])
    assert separator.n_invalid_train_ >= len(bad)
    gammaness, valid = separator.gammaness(bad, return_valid=True)
    assert not valid.any() and (gammaness == INVALID_GAMMANESS).all()
    assert (separator.predict(bad) == 1).all()
    metrics = evaluate_separation(np.r_[0, 0, 1, 0, 1, 1], np.r_[gammaness, [1.0, 2.0, 0.0]][-6:],
                                  valid=np.r_[False, False, False, True, True, True])
    assert (metrics.n_invalid_gamma, metrics.n_invalid_hadron) == (2, 1)


def test_chi2_threshold_uses_latent_cut(camera, events):
    (images, labels), _ = events
    separator = GammaHadronSeparator(camera, detector=tiny_flow(), threshold="chi2").fit(images, labels)
    assert separator.detector_.score_type == "latent_norm"
    np.testing.assert_allclose(separator.cut_, -chi2.ppf(0.9, len(separator.features_)))


def test_feature_table_with_uci_names_on_real_magic():
    X, y, names = load_magic_gamma()
    rng = np.random.default_rng(0)
    rows = rng.permutation(len(y))
    train, test = rows[:3000], rows[3000:6000]
    frame = pd.DataFrame(X, columns=names)
    separator = GammaHadronSeparator(detector=tiny_flow()).fit(frame.iloc[train], y[train])
    assert separator.features_ == ("log10_intensity", "length", "width", "dist", "alpha", "conc", "conc1",
                                   "asym", "m3long", "m3trans")
    assert separator.n_invalid_train_ == 0 and separator.n_train_ == int((y[train] == 0).sum())
    assert evaluate_separation(y[test], separator.gammaness(frame.iloc[test])).roc_auc > 0.7


def test_save_load_roundtrip_and_refusals(tmp_path, fitted, events):
    _, (images, _) = events
    path = io.save(fitted, tmp_path / "model")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "weights.safetensors"]  # one model folder
    loaded = io.load(path)
    np.testing.assert_allclose(loaded.gammaness(images), fitted.gammaness(images))
    assert loaded.cut_ == fitted.cut_ and loaded.features_ == fitted.features_
    io.save(fitted, path)  # replacing a separator is fine
    other = tmp_path / "notes"
    other.mkdir()
    (other / "a.txt").write_text("keep me")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        io.save(fitted, other)
    assert (other / "a.txt").read_text() == "keep me"
    with pytest.raises(FileNotFoundError, match="no flowad model"):
        io.load(tmp_path / "missing")
    config = json.loads((path / "config.json").read_text())
    config["state"]["cut_"] = 0.0
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="checksum"):
        io.load(path)


@pytest.mark.parametrize(
    ("params", "y", "message"),
    [
        ({"mode": "threeclass"}, "labels", "mode must be one of"),
        ({"train_on": "muon"}, "labels", "train_on must be one of"),
        ({"train_efficiency": 0.3}, "labels", "train_efficiency"),
        ({"mode": "twoclass"}, None, "y is required"),
        ({"features": ("length", "height")}, "labels", "features"),
    ],
)
def test_bad_input_names_the_parameter(camera, events, params, y, message):
    (images, labels), _ = events
    separator = GammaHadronSeparator(camera, detector=tiny_flow(), **params)
    with pytest.raises(ValueError, match=message):
        separator.fit(images[:50], labels[:50] if y else None)


def test_images_need_a_camera(events):
    (images, labels), _ = events
    with pytest.raises(ValueError, match="camera must be given"):
        GammaHadronSeparator(detector=tiny_flow()).fit(images, labels)


def test_report_files(tmp_path, fitted, events):
    _, (images, labels) = events
    table = fitted.feature_table(images)
    gammaness, valid = fitted.gammaness(table, return_valid=True)
    md, page = write_iact_report(tmp_path, labels, {"flow": gammaness}, valid=valid, cuts={"flow": fitted.cut_},
                                 table=table, images=images, hillas=fitted.hillas_features(), n_examples=1)
    for name in ("roc.png", "features.png", "camera_examples.png", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0
    assert "<table" in page.read_text() and "data:image/png;base64" in page.read_text()
    assert "| flow |" in md.read_text()


# ----------------------------------------------------------------------------------------- metrics
def test_efficiency_at_acceptance_is_exact():
    y = np.r_[np.zeros(100, int), np.ones(100, int)]
    gammaness = np.r_[np.arange(100) + 50.5, np.arange(100)]  # hadrons 0..99, gammas 50.5..149.5
    eff = gamma_efficiency_at_hadron_acceptance(y, gammaness, acceptances=(0.01, 0.05, 0.2))
    # 1%: keep hadron 99 only (cut 98) -> gammas 98.5..149.5 = 52; 5%: cut 94 -> 56; 20%: cut 79 -> 71
    assert eff == {0.01: 0.52, 0.05: 0.56, 0.2: 0.71}
    assert efficiencies_at_cut(y, gammaness, 89.5) == (0.6, 0.1)
    assert quality_factor(0.6, 0.09) == pytest.approx(2.0)
    metrics = evaluate_separation(y, gammaness, cut=89.5, acceptances=(0.01, 0.1))
    assert metrics.quality_factor[0.01] == pytest.approx(0.52 / 0.1)
    assert metrics.cut_quality_factor == pytest.approx(0.6 / np.sqrt(0.1))
    assert metrics.as_dict()["gamma_eff_at_10pct"] == 0.61 and metrics.as_dict()["q_at_1pct"] == pytest.approx(5.2)
    # perfect separation
    perfect = evaluate_separation(y, np.r_[np.ones(100), np.zeros(100)])
    assert perfect.roc_auc == 1.0 and perfect.gamma_efficiency[0.01] == 1.0


def test_max_quality_factor_and_training_cut():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    gammaness = np.array([8.0, 7.0, 3.0, 1.0, 6.0, 5.0, 2.0, 0.0])
    q, eps_g, eps_h = max_quality_factor(y, gammaness, min_hadrons=1)
    # keep >= 6: 2 gammas, 1 hadron -> 0.5 / sqrt(0.25) = 1.0; keep >= 2: 3/4 / sqrt(3/4) = 0.866
    assert (q, eps_g, eps_h) == (pytest.approx(1.0), 0.5, 0.25)
    assert cut_from_training(np.arange(11.0), 0.9) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="gamma_efficiency"):
        cut_from_training(np.arange(5.0), 1.5)


@pytest.mark.parametrize(
    ("y", "g", "message"),
    [([0, 2], [1.0, 2.0], "y must hold only"), ([0, 1], [1.0, np.nan], "gammaness"), ([0, 0], [1.0, 2.0], "both"),
     ([0, 1], [1.0], "gammaness must have shape")],
)
def test_metric_bad_input(y, g, message):
    with pytest.raises(ValueError, match=message):
        gamma_efficiency_at_hadron_acceptance(y, g)


def test_magic_loader():
    X, y, names = load_magic_gamma()
    assert X.shape == (19020, 10) and X.dtype == np.float64 and y.dtype == np.int64
    assert (y == 0).sum() == 12332 and (y == 1).sum() == 6688
    assert tuple(names) == MAGIC_GAMMA_FEATURES and names[0] == "fLength" and names[-1] == "fDist"
    assert np.isfinite(X).all() and X[:, 8].max() <= 90.0  # fAlpha in degrees
