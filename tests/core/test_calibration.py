"""Conformal calibration: p-values, thresholds, folds, and alarm rates at the rate asked for."""

import numpy as np
import pytest

from flowad import FlowDetector, IsolationForestDetector, LOFDetector
from flowad.core.calibration import Calibration, calibration_folds, resolve_calibration


def test_p_values_and_offset_agree_exactly():
    rng = np.random.default_rng(0)
    calibration = Calibration.from_scores(np.round(rng.normal(size=301), 1), "split")  # many ties
    scores = np.round(rng.normal(size=5000), 1)
    for c in (0.01, 0.05, 0.2):
        flagged = scores < calibration.offset(c)
        np.testing.assert_array_equal(calibration.p_values(scores) <= c, flagged)


def test_the_guarantee_holds_for_exchangeable_rows():
    """Split conformal: a new normal row is flagged with probability in [c - 1/(n+1), c]."""
    rng = np.random.default_rng(1)
    n, c, rates = 199, 0.05, []
    for _ in range(400):
        calibration = Calibration.from_scores(rng.standard_t(3, size=n), "split")
        rates.append((rng.standard_t(3, size=2000) < calibration.offset(c)).mean())
    assert c - 1 / (n + 1) - 0.003 <= np.mean(rates) <= c + 0.003


def test_too_few_rows_flag_nothing_and_say_so(caplog):
    calibration = Calibration.from_scores(np.arange(50.0), "split")
    assert calibration.offset(0.01) == np.finfo(np.float64).min
    assert "no p-value is below" in caplog.text


def test_cross_fitting_folds_calibrate_every_normal_row_once():
    labels = np.r_[np.zeros(103, int), np.ones(12, int)]
    folds = calibration_folds(labels, np.random.default_rng(0))
    held = np.concatenate([cal for _, cal in folds])
    assert sorted(held) == list(range(103))  # normal rows only, each once
    for fit, cal in folds:
        assert not set(fit) & set(cal) and labels[fit].sum() >= 9  # negatives in every fold model
    assert resolve_calibration("auto", 20_000) == "cross" and resolve_calibration("auto", 20_001) == "split"


def _consistent(flagged: int, m: int, n_calibration: int, c: float = 0.01) -> bool:
    """Within 3 standard deviations of ``c``: binomial noise of the ``m`` new rows plus the spread of
    the calibrated cut over ``n_calibration`` rows (both about ``c (1 - c) / size``)."""
    spread = np.sqrt(c * (1 - c) * (1 / m + 1 / n_calibration))
    return abs(flagged / m - c) <= 3 * spread


def _skewed(n, rng):
    """Non-Gaussian normal rows: a heavy tail and a curved dependence."""
    a = rng.standard_t(4, size=n)
    b = 0.5 * a**2 + rng.normal(size=n)
    return np.c_[a, b, rng.gamma(2.0, size=n)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alarm_rate_on_fresh_normal_rows_is_the_rate_asked_for(seed):
    """flowad 0.1 flagged 4.4%, 1.2% and 0.12% of 5,000 fresh rows for seeds 0-2 at 1% (a quantile of ~116
    held-out rows that had also chosen the flow's epoch)."""
    rng = np.random.default_rng(seed)
    train, fresh = _skewed(1160, rng), _skewed(5000, rng)
    detector = FlowDetector(transforms=3, hidden_features=(32, 32), max_epochs=40, random_state=seed).fit(train)
    assert detector.calibration_.method == "cross" and detector.calibration_.n == 1160
    flagged = int((detector.predict(fresh) == -1).sum())
    assert _consistent(flagged, 5000, 1160), flagged / 5000


@pytest.mark.parametrize("detector", [IsolationForestDetector(random_state=0), LOFDetector()])
def test_baselines_are_calibrated_alike(detector):
    rng = np.random.default_rng(3)
    detector.fit(_skewed(2000, rng))
    flagged = int((detector.predict(_skewed(5000, rng)) == -1).sum())
    assert _consistent(flagged, 5000, 2000), flagged / 5000
