"""DTE-NP (Livernoche et al., ICLR 2024): a monotone map of the 5-NN mean squared distance, the mode
of an inverse-gamma posterior over the diffusion steps."""

import numpy as np
import pytest
from scipy.stats import invgamma, spearmanr

from flowad import make_detector
from flowad.evaluation import roc_auc
from flowad.models.baselines.dte_np import DTENPDetector, diffusion_variances


def _brute_m(train: np.ndarray, rows: np.ndarray, k: int = 5) -> np.ndarray:
    """Mean of the k smallest squared distances to the standardised training rows, row by row."""
    mean, std = train.mean(axis=0), train.std(axis=0)
    std[std == 0] = 1.0
    Z, R = (train - mean) / std, (rows - mean) / std
    return np.array([np.sort(((Z - r) ** 2).sum(axis=1))[:k].mean() for r in R])


def test_far_rows_score_below_central_rows():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 4))
    test = np.vstack([rng.normal(size=(50, 4)) * 0.3, rng.normal(size=(20, 4)) + 6.0])
    y = np.r_[np.zeros(50), np.ones(20)]
    detector = make_detector("dte_np").fit(train)
    scores = detector.score_samples(test)
    assert isinstance(detector, DTENPDetector) and scores.shape == (70,)
    assert scores[:50].min() > scores[50:].max()
    assert roc_auc(y, -scores) == 1.0
    np.testing.assert_array_equal(detector.predict(test), np.where(scores < detector.offset_, -1, 1))


def test_the_score_is_a_monotone_map_of_the_mean_nearest_distance():
    rng = np.random.default_rng(1)
    train, test = rng.normal(size=(300, 6)), rng.normal(size=(200, 6)) * rng.uniform(0.2, 2.0, size=(200, 1))
    m = _brute_m(train, test)
    detector = DTENPDetector().fit(train)
    np.testing.assert_allclose(detector.neighbor_distances(test), m, rtol=1e-9, atol=1e-9)
    assert spearmanr(m, -detector.score_samples(test)).statistic == pytest.approx(1.0, abs=1e-12)
    # the authors' integer steps tie, but never order two rows against their distances
    step = -DTENPDetector(tie_break=False).fit(train).score_samples(test)
    np.testing.assert_array_equal(step, np.round(step))
    order = np.argsort(m)
    assert (np.diff(step[order]) >= 0).all()


@pytest.mark.parametrize("d", [3, 7])
def test_the_step_is_the_argmax_of_the_inverse_gamma_posterior(d):
    rng = np.random.default_rng(d)
    train = rng.normal(size=(200, d))
    rows = np.vstack([train[:1] * 0.5, rng.normal(size=(1, d)) * 1.5, rng.normal(size=(1, d)) * 0.7])
    # the schedule written out: betas linear 1e-4..0.01 over 300 steps, sigma2_t = 1 - prod(1 - beta)
    sigma2 = 1.0 - np.cumprod(1.0 - np.linspace(1e-4, 0.01, 300))
    np.testing.assert_allclose(diffusion_variances(), sigma2, rtol=1e-12)
    m = _brute_m(train, rows)
    log_density = np.array([invgamma.logpdf(sigma2, a=d / 2 - 1, scale=mi / 2) for mi in m])
    posterior = np.exp(log_density - log_density.max(axis=1, keepdims=True))
    posterior /= posterior.sum(axis=1, keepdims=True)
    detector = DTENPDetector(tie_break=False).fit(train)
    assert len(set(np.argmax(posterior, axis=1))) == 3  # three different steps
    np.testing.assert_array_equal(-detector.score_samples(rows), np.argmax(posterior, axis=1))
    np.testing.assert_allclose(np.exp(detector.log_posterior(rows)), posterior, rtol=1e-8, atol=1e-12)
    # the tie-breaker stays inside the step
    np.testing.assert_array_equal(np.floor(-DTENPDetector().fit(train).score_samples(rows)),
                                  np.argmax(posterior, axis=1))


def test_saturated_rows_keep_the_order_of_their_distances():
    rng = np.random.default_rng(2)
    train = rng.normal(size=(300, 5))
    far = np.outer(np.array([4.0, 6.0, 9.0, 15.0, 40.0, 1e3]), np.ones(5))
    plain = DTENPDetector(tie_break=False).fit(train).score_samples(far)
    assert (plain == -299).all()  # all past the last step: the authors' scores tie
    scores = DTENPDetector().fit(train).score_samples(far)
    assert (np.diff(scores) < 0).all() and (scores > -300).all() and (scores <= -299).all()


def test_few_columns_and_duplicates_stay_defined():
    # inverse-gamma shape D/2 - 1 <= 0 and distance 0: scipy's density is NaN there, the kernel is not
    rng = np.random.default_rng(3)
    for d in (1, 2):
        train = rng.normal(size=(200, d))
        test = np.vstack([train[:3], rng.normal(size=(5, d)) + 5.0])
        scores = DTENPDetector().fit(train).score_samples(test)
        assert np.isfinite(scores).all() and scores[:3].min() > scores[3:].max()
    X = np.repeat(rng.normal(size=(20, 3)), 10, axis=0)
    assert DTENPDetector().fit(X).score_samples(X[:5]).tolist() == [0.0] * 5


def test_chunks_do_not_change_the_scores():
    rng = np.random.default_rng(4)
    train, test = rng.normal(size=(250, 3)), rng.normal(size=(101, 3)) * 2
    whole = DTENPDetector().fit(train).score_samples(test)
    np.testing.assert_allclose(DTENPDetector(chunk_rows=7).fit(train).score_samples(test), whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("params", "name"), [
    ({"n_neighbors": 0}, "n_neighbors"),
    ({"n_steps": 1}, "n_steps"),
    ({"beta_start": 0.0}, "beta_start"),
    ({"beta_end": 1.5}, "beta_end"),
    ({"beta_start": 0.02, "beta_end": 0.01}, "beta_start"),
    ({"tie_break": "yes"}, "tie_break"),
    ({"chunk_rows": 0}, "chunk_rows"),
    ({"contamination": 0.9}, "contamination"),
])
def test_bad_parameters_raise_one_line_naming_them(params, name):
    X = np.random.default_rng(5).normal(size=(50, 3))
    with pytest.raises(ValueError, match=name) as info:
        DTENPDetector(**params).fit(X)
    assert "\n" not in str(info.value)


def test_bad_input_raises():
    rng = np.random.default_rng(6)
    with pytest.raises(ValueError, match="n_neighbors"):
        DTENPDetector().fit(rng.normal(size=(5, 3)))  # calibration folds of 4 rows
    detector = DTENPDetector().fit(rng.normal(size=(50, 3)))
    with pytest.raises(ValueError, match="features"):
        detector.score_samples(rng.normal(size=(4, 2)))
    with pytest.raises(ValueError):
        detector.score_samples(np.array([[0.0, np.nan, 1.0]]))
