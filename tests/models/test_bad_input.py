"""Bad input gets a clear ValueError naming what was wrong, for every detector."""

import numpy as np
import pytest

from flowad import make_detector
from flowad.models import DETECTORS, FlowOptions
from tests.conftest import FAST


@pytest.fixture(scope="module")
def fitted():
    X = np.random.default_rng(0).normal(size=(80, 3))
    return {name: make_detector(name, **FAST.get(name, {})).fit(X) for name in DETECTORS}


GOOD = np.random.default_rng(1).normal(size=(10, 3))


def _with(value):
    X = GOOD.copy()
    X[2, 1] = value
    return X


BAD_FIT = [
    (_with(np.nan), "NaN"),
    (_with(np.inf), "infinity|too large"),
    (np.zeros((0, 3)), "0 sample"),
    (np.arange(10.0), "Expected 2D array"),
    (np.array([["a", "b"], ["c", "d"]]), "string|convert"),
    (np.zeros((1, 3)), "1 sample"),
]


@pytest.mark.parametrize("name", list(DETECTORS))
@pytest.mark.parametrize("X, match", BAD_FIT, ids=["nan", "inf", "empty", "1d", "strings", "one-row"])
def test_fit_rejects(name, X, match):
    with pytest.raises(ValueError, match=match):
        make_detector(name, **FAST.get(name, {})).fit(X)


BAD_SCORE = [
    (_with(np.nan), "NaN"),
    (_with(-np.inf), "infinity|too large"),
    (np.zeros((0, 3)), "0 sample"),
    (np.arange(3.0), "Expected 2D array"),
    (np.zeros((4, 5)), "5 features.*expecting 3"),
    (np.array([["a", "b", "c"]]), "string|convert"),
]


@pytest.mark.parametrize("name", list(DETECTORS))
@pytest.mark.parametrize("X, match", BAD_SCORE, ids=["nan", "inf", "empty", "1d", "n_features", "strings"])
def test_score_rejects(fitted, name, X, match):
    for method in ("score_samples", "decision_function", "predict"):
        with pytest.raises(ValueError, match=match):
            getattr(fitted[name], method)(X)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("maf", {"flow": "glow"}, "flow"),
        ("maf", {"score_type": "energy"}, "score_type"),
        ("maf", {"contamination": 0.9}, "contamination"),
        ("maf", {"contamination": "most"}, "contamination"),
        ("maf", {"transforms": 0}, "transforms"),
        ("maf", {"learning_rate": -1.0}, "learning_rate"),
        ("maf", {"calibration": "always"}, "calibration"),
        ("maf", {"options": {"batch_size": 3}}, "options"),
        ("maf_ensemble", {"n_flows": 0}, "n_flows"),
        ("maf_ensemble", {"combine": "median"}, "combine"),
        ("maf_ensemble", {"score_type": "latent_norm"}, "invalid parameters"),
    ],
)
def test_bad_hyper_parameters_are_named(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_detector(name, **params).fit(GOOD)


@pytest.mark.parametrize("option, value", [("batch_size", 0), ("validation_fraction", 1.0), ("threshold", "median"),
                                           ("pca_components", "some")])
def test_bad_options_are_named(option, value):
    with pytest.raises(ValueError, match=f"FlowOptions.{option}"):
        FlowOptions(**{option: value})


def test_unknown_detector_and_parameter():
    with pytest.raises(ValueError, match="detector must be one of"):
        make_detector("dbscan")
    with pytest.raises(ValueError, match="invalid parameters for detector 'iforest'"):
        make_detector("iforest", n_trees=3)


def test_bad_device_is_named():
    with pytest.raises(ValueError, match="device"):
        make_detector("maf", device="tpu9").fit(GOOD)
