"""The registry and the classic detectors: same contract, sensible detection."""

import numpy as np
import pytest

from flowad import available_detectors, make_detector
from flowad.evaluation import roc_auc
from flowad.models import AutoencoderDetector, FlowDetector
from tests.conftest import FAST


def test_registry_names():
    assert available_detectors() == ["maf", "maf_hybrid", "realnvp", "nsf", "maf_ensemble", "iforest", "ocsvm",
                                     "elliptic", "lof", "ae"]
    assert make_detector("nsf").flow == "nsf"
    assert make_detector("maf_hybrid").score_type == "hybrid"
    assert isinstance(make_detector("realnvp", transforms=3), FlowDetector)


@pytest.mark.parametrize("name", ["iforest", "ocsvm", "elliptic", "lof", "ae"])
def test_baselines_detect_clear_outliers(blobs, name):
    train, (test, y) = blobs
    params = {"max_epochs": 100} if name == "ae" else {}
    detector = make_detector(name, **params).fit(train)
    scores = detector.score_samples(test)
    assert roc_auc(y, -scores) > 0.85
    np.testing.assert_array_equal(detector.predict(test), np.where(scores < detector.offset_, -1, 1))


@pytest.mark.parametrize("name", ["iforest", "ocsvm", "elliptic", "lof", "ae"])
def test_contamination_sets_the_training_quantile(blobs, name):
    train, _ = blobs
    low = make_detector(name, contamination=0.01, **FAST.get(name, {})).fit(train).offset_
    high = make_detector(name, contamination=0.3, **FAST.get(name, {})).fit(train).offset_
    assert low < high


def test_autoencoder_arguments_shape_the_network():
    X = np.random.default_rng(0).normal(size=(100, 8))
    detector = AutoencoderDetector(hidden_features=(12,), bottleneck=3, dropout=0.2, max_epochs=2).fit(X)
    linears = [m for m in detector.module_.modules() if m.__class__.__name__ == "Linear"]
    assert [(m.in_features, m.out_features) for m in linears] == [(8, 12), (12, 3), (3, 12), (12, 8)]
    assert detector.n_epochs_ <= 2


def test_elliptic_envelope_refuses_wide_data_quickly():
    X = np.random.default_rng(0).normal(size=(40, 30))
    with pytest.raises(ValueError, match="twice as many rows as columns"):
        make_detector("elliptic").fit(X)


def test_a_calibration_fit_that_fails_says_it_saw_part_of_the_rows():
    X = np.random.default_rng(0).normal(size=(40, 19))  # enough rows for one fit, not for four fifths of them
    with pytest.raises(ValueError, match=r"got X with 32 rows .* \(in a calibration fit: calibration='cross' fits "
                                         r"5 copies, each on 32 of the 40 rows\)"):
        make_detector("elliptic").fit(X)
    with pytest.raises(ValueError, match=r"calibration='split' fits on 20 of the 40 rows"):
        make_detector("elliptic", calibration="split").fit(X)


def test_pyod_mcd_refuses_wide_tables_by_name_and_fits_narrow_ones():
    pytest.importorskip("pyod")
    from flowad.models.baselines.pyod_peers import MCD_MAX_FEATURES, PyODDetector

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=f"pyod_mcd is refused for {MCD_MAX_FEATURES + 1} columns"):
        PyODDetector("pyod_mcd", random_state=0).fit(rng.normal(size=(50, MCD_MAX_FEATURES + 1)))
    assert PyODDetector("pyod_mcd", random_state=0).fit(rng.normal(size=(200, 3))).score_samples(
        rng.normal(size=(5, 3))).shape == (5,)
