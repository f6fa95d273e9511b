"""FlowDetector: detection floors on real data, determinism, scores, thresholds, preprocessing."""

from pathlib import Path

import numpy as np
import pytest
import torch
import zuko
from scipy.stats import chi2

from flowad import FlowDetector
from flowad.core.preprocessing import TabularScaler
from flowad.core.training import TrainingConfig, TrainingHistory, train_module, trimmed_mean, warn_if_untrained
from flowad.datasets import load_adbench, oneclass_split
from flowad.evaluation import roc_auc
from flowad.models import FlowEnsembleDetector, FlowOptions


def test_thyroid_roc_auc_floor():
    """ADBench thyroid, fit on 60% of the normals: the default MAF reaches ROC-AUC >= 0.97."""
    X, y = load_adbench("thyroid")
    X_train, X_test, y_test = oneclass_split(X, y, train_fraction=0.6, random_state=0)
    # one fit: cross-fitting would train 5 more models for a threshold this test does not look at
    detector = FlowDetector("maf", calibration="split", random_state=0).fit(X_train)
    assert roc_auc(y_test, -detector.score_samples(X_test)) >= 0.97


@pytest.mark.parametrize("score_type", ["nll", "latent_norm", "mahalanobis"])
def test_every_score_type_separates_outliers(blobs, score_type):
    train, (test, y) = blobs
    detector = FlowDetector(score_type=score_type, max_epochs=60, random_state=0).fit(train)
    scores = detector.score_samples(test)
    assert scores.shape == (len(test),) and np.isfinite(scores).all()
    assert roc_auc(y, -scores) > 0.95


def test_same_seed_same_model_and_global_rng_untouched(blobs):
    train, (test, _) = blobs
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = FlowDetector(max_epochs=5, random_state=7).fit(train).score_samples(test)
    after = torch.rand(1)
    b = FlowDetector(max_epochs=5, random_state=7).fit(train).score_samples(test)
    c = FlowDetector(max_epochs=5, random_state=8).fit(train).score_samples(test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert before == after  # fitting did not consume the caller's global torch RNG


def test_log_likelihood_includes_the_preprocessing_jacobian(blobs):
    """Scaling the input by 10 lowers the log-density of the same rows by D * log(10)."""
    train, (test, _) = blobs
    a = FlowDetector(max_epochs=5, random_state=0).fit(train)
    b = FlowDetector(max_epochs=5, random_state=0).fit(train * 10)
    expected = a.log_likelihood(test) - train.shape[1] * np.log(10)
    np.testing.assert_allclose(b.log_likelihood(test * 10), expected, rtol=1e-4, atol=1e-4)


def test_contamination_threshold_flags_that_share_of_unseen_normals(blobs):
    train, _ = blobs
    rng = np.random.default_rng(5)
    cov = np.cov(train, rowvar=False)
    fresh = rng.multivariate_normal(np.zeros(4), cov, size=4000)
    detector = FlowDetector(contamination=0.1, max_epochs=60, random_state=0).fit(train)
    flagged = (detector.predict(fresh) == -1).mean()
    assert 0.03 < flagged < 0.25  # held-out quantile from 40 validation rows: noisy but unbiased
    np.testing.assert_array_equal(detector.predict(fresh) == -1, detector.decision_function(fresh) < 0)


def test_chi2_threshold_is_analytic(blobs):
    train, _ = blobs
    detector = FlowDetector(score_type="latent_norm", options=FlowOptions(threshold="chi2"), contamination=0.05,
                            max_epochs=3, random_state=0).fit(train)
    assert detector.offset_ == pytest.approx(-chi2.ppf(0.95, df=4))
    with pytest.raises(ValueError, match="threshold='chi2'"):
        FlowDetector(options=FlowOptions(threshold="chi2"), max_epochs=2).fit(train)


def test_constant_columns_are_kept_out_of_the_flow(blobs):
    train, (test, y) = blobs
    train = np.column_stack([train, np.full(len(train), 3.0)])
    test = np.column_stack([test, np.full(len(test), 3.0)])
    detector = FlowDetector(max_epochs=30, random_state=0).fit(train)
    assert detector.scaler_.n_model_features == 4
    scores = detector.score_samples(test)
    assert np.isfinite(scores).all() and roc_auc(y, -scores) > 0.9
    moved = test.copy()
    moved[:, -1] = 4.0  # a deviation in a column that never varied is less likely
    assert (detector.score_samples(moved) < scores).all()


def test_all_constant_columns_still_score():
    X = np.ones((30, 3))
    detector = FlowDetector(max_epochs=2, random_state=0).fit(X)
    scores = detector.score_samples(np.vstack([X[:2], [[1, 1, 5]]]))
    assert np.isfinite(scores).all() and scores[2] < scores[0]


def test_discrete_columns_are_dequantized_and_train_finitely():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 3, 500), rng.normal(size=500), rng.choice([0.1, 0.25, 0.7], 500)])
    scaler = TabularScaler.fit(X)
    assert scaler.integer.tolist() == [True, False, False]
    assert scaler.discrete.tolist() == [True, False, True]
    low, width = scaler.dequantization_bins(X)
    assert (width[:, 1] == 0).all() and (width[:, 0] > 0).all() and (width[:, 2] > 0).all()
    # every discrete value lies inside its own bin
    Xs = scaler.transform(X)
    assert ((low <= Xs) & (Xs <= low + width)).all()
    detector = FlowDetector(max_epochs=20, random_state=0).fit(X)
    assert np.isfinite(detector.history_.validation_loss).all()
    assert np.isfinite(detector.score_samples(X)).all()


def test_divergence_guard_restores_best_weights():
    """A learning rate far too large diverges; the guard recovers and scores stay finite."""
    X, y = load_adbench("shuttle")
    X_train, X_test, _ = oneclass_split(X[:6000], y[:6000], random_state=0)
    detector = FlowDetector(learning_rate=5.0, max_epochs=8, random_state=0).fit(X_train)
    assert detector.history_.restarts > 0
    assert np.isfinite(detector.history_.best_validation_loss)
    assert (detector.score_samples(X_test) > np.finfo(np.float64).min).all()


def test_trimmed_mean_leaves_out_the_largest_values():
    values = torch.tensor([1.0, 2.0, 3.0, 100.0, float("nan")])
    assert trimmed_mean(values, 0.4) == pytest.approx(2.0)  # nan and 100 dropped
    assert trimmed_mean(values[:4], 0.2) == pytest.approx(26.5)  # floor(0.8) = 0: nothing dropped
    assert trimmed_mean(values[:4], 0.25) == pytest.approx(2.0)
    assert trimmed_mean(values[:4], 0.0) == pytest.approx(26.5)


@pytest.mark.parametrize("trim", [0.0, 0.05])
def test_one_far_validation_row_stops_training_only_without_trimming(trim):
    """Training rows spread 0.1; one of 41 held-out rows lies at (3, 3). As the flow sharpens, that
    row's loss grows to ~900 nats and the plain validation mean rises from the first epochs on."""
    rng = np.random.default_rng(0)
    train = torch.as_tensor(0.1 * rng.normal(size=(500, 2)), dtype=torch.float32)
    validation = torch.as_tensor(np.vstack([0.1 * rng.normal(size=(40, 2)), [[3.0, 3.0]]]), dtype=torch.float32)
    torch.manual_seed(0)
    flow = zuko.flows.MAF(2, transforms=2, hidden_features=(16, 16))
    config = TrainingConfig(max_epochs=60, patience=10, learning_rate=1e-2, validation_trim=trim)
    history = train_module(flow, lambda m, b: -m().log_prob(b), train, validation, config,
                           torch.Generator().manual_seed(0))
    with torch.no_grad():
        normal_loglik = flow().log_prob(validation[:40]).mean().item()
    if trim == 0:
        assert history.stopped_early and history.best_epoch < 10
        assert normal_loglik < 0  # barely past the standard normal it started as
    else:
        assert history.best_epoch > 20
        assert normal_loglik > 1.0  # ~2.8 nats at convergence for a spread of 0.1 in two dimensions


def test_files_saved_before_validation_trim_and_tail_bound_existed_load_with_their_old_values(tmp_path):
    """A flowad 0.1 file without those parameters was trained with neither: loading keeps it so."""
    import json
    import shutil

    from flowad import io

    shutil.copytree(Path(__file__).parents[2] / "data" / "model_files_v1" / "FlowDetector", tmp_path / "model")
    config_path = tmp_path / "model" / io.CONFIG_FILE
    config = json.loads(config_path.read_text())
    del config["params"]["validation_trim"], config["params"]["tail_bound"]
    config["config_sha256"] = io.config_digest(config)
    config_path.write_text(json.dumps(config))
    loaded = io.load(tmp_path / "model")
    assert loaded.options.validation_trim == 0.0 and loaded.tail_bound is None
    assert FlowOptions().validation_trim == 0.05 and FlowDetector().tail_bound == 100.0


def _zero_inflated(n: int = 600, seed: int = 0) -> np.ndarray:
    """Two normal columns and one like ADBench ALOI's: 80% of the rows within 1e-3 of zero, the
    rest spread over [1, 50], so the robust spread is ~1e-3 and the far rows lie ~1e4 spreads out."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    X[:, 2] = np.where(rng.random(n) < 0.8, 1e-3 * rng.normal(size=n), rng.uniform(1, 50, n))
    return X


def test_tail_map_is_the_identity_inside_the_bound_and_doubly_logarithmic_beyond():
    scaler = TabularScaler.fit(_zero_inflated(), tail_bound=10.0)
    s = np.array([-1e4, -10.0, -3.0, 0.0, 2.5, 10.0, 10.0 + 1e-9, 1e3, 1e300])
    g = scaler._compress(s)
    np.testing.assert_array_equal(g[1:6], s[1:6])
    np.testing.assert_allclose(g[[0, 7]], [-10 * (1 + np.log(1 + np.log(1e3))), 10 * (1 + np.log(1 + np.log(1e2)))])
    assert abs(g[6] - g[5]) < 1e-8 and (np.diff(g) > 0).all()  # continuous at the bound, increasing
    assert g[-1] < 7.6 * 10  # even 1e300 spreads stay within a few bounds
    # the per-row log-Jacobian equals the finite-difference slope of transform, column by column
    X = _zero_inflated(20, seed=3)
    X[0, 2] = 40.0
    h = 1e-6 * scaler.scale
    slopes = np.stack([(scaler.transform(X + np.eye(3)[j] * h[j]) - scaler.transform(X - np.eye(3)[j] * h[j]))[:, j]
                       / (2 * h[j]) for j in range(3)], axis=1)
    np.testing.assert_allclose(scaler.log_abs_det(X), np.log(slopes).sum(axis=1), atol=1e-4)
    assert scaler.log_abs_det(X)[0] < scaler.affine_log_abs_det  # row 0 reaches the compressed tail


def test_dequantisation_bins_are_mapped_edge_by_edge_through_the_tail_map():
    rng = np.random.default_rng(0)
    # an integer column: 90% of the rows in 0..3 (robust spread ~1.5), the rest out to 1000
    counts = np.where(rng.random(400) < 0.9, rng.integers(0, 4, 400), rng.integers(10, 1000, 400))
    X = np.column_stack([rng.normal(size=400), counts])
    scaler = TabularScaler.fit(X, tail_bound=5.0)
    low, width = scaler.dequantization_bins(X)
    edges = (X[:, 1] - 0.5 - scaler.center[1]) / scaler.scale[1]
    np.testing.assert_allclose(low[:, 1], scaler._compress(edges))
    np.testing.assert_allclose(low[:, 1] + width[:, 1], scaler._compress(edges + 1 / scaler.scale[1]))
    unit = 1 / scaler.scale[1]  # a bin's width inside the bound
    assert (width[:, 1] > 0).all() and width[:, 1].max() == pytest.approx(unit) and width[:, 1].min() < 0.1 * unit
    Xs = scaler.transform(X)
    assert ((low <= Xs + 1e-12) & (Xs <= low + width + 1e-12)).all()  # each value inside its own bin


def test_scaler_arrays_round_trip_and_older_arrays_have_no_tail_map():
    scaler = TabularScaler.fit(_zero_inflated(), tail_bound=100.0)
    arrays = scaler.to_arrays()
    assert TabularScaler.from_arrays(arrays).tail_bound == 100.0
    del arrays["tail_bound"]
    assert TabularScaler.from_arrays(arrays).tail_bound == np.inf
    with pytest.raises(ValueError, match="tail_bound"):
        TabularScaler.fit(_zero_inflated(), tail_bound=0.0)
    with pytest.raises(ValueError, match="tail_bound"):
        FlowDetector(tail_bound=-1.0).fit(_zero_inflated())


def test_extreme_column_trains_with_the_tail_map_and_warns_without_it():
    """Without compression the first optimisation steps overflow on every restart (seed 1); fit
    warns and keeps the untrained flow. With the default bound the same data train."""
    from sklearn.exceptions import ConvergenceWarning

    X = _zero_inflated()
    with pytest.warns(ConvergenceWarning, match="tail_bound"):
        untrained = FlowDetector(tail_bound=None, max_epochs=5, random_state=1).fit(X)
    assert untrained.history_.best_epoch == -1
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        trained = FlowDetector(max_epochs=5, random_state=1).fit(X)
    assert trained.history_.best_epoch >= 0 and np.isfinite(trained.history_.best_validation_loss)
    probe = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 30.0], [0.0, 0.0, 1e4]])
    scores = trained.score_samples(probe)
    assert np.isfinite(scores).all() and scores[2] < scores[1]  # far beyond the training tail: less likely


def test_every_torch_detector_can_say_that_training_never_reached_a_finite_loss():
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    match = r"autoencoder training failed.*6 divergences.*learning_rate \(now 0.01\)"
    with pytest.warns(ConvergenceWarning, match=match):
        assert warn_if_untrained(TrainingHistory(restarts=6), "autoencoder", 0.01)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_untrained(TrainingHistory(best_epoch=3), "autoencoder", 0.01)


def test_tail_map_changes_nothing_when_no_value_reaches_the_bound(blobs):
    train, (test, _) = blobs
    a = FlowDetector(max_epochs=5, random_state=0).fit(train)
    b = FlowDetector(tail_bound=None, max_epochs=5, random_state=0).fit(train)
    np.testing.assert_array_equal(a.score_samples(test), b.score_samples(test))


def test_tail_compressed_density_integrates_to_one():
    """With heavy-tailed data and a low bound much of the mass passes through the logarithmic tail
    map; the log-likelihood, Jacobian included, is still a normalised density in input units."""
    train = np.random.default_rng(0).standard_t(1.5, size=600)[:, None]
    detector = FlowDetector(tail_bound=2.0, max_epochs=30, noise_std=0.0, random_state=0).fit(train)
    standardised = np.abs((train - detector.scaler_.center) / detector.scaler_.scale)
    assert (standardised > 2.0).mean() > 0.1
    tail = np.geomspace(1e-4, 1e300, 400_001)  # the compressed tails are very heavy in input units
    grid = np.r_[-tail[::-1], 0.0, tail][:, None] + detector.scaler_.center
    mass = np.trapezoid(np.exp(detector.log_likelihood(grid)), grid[:, 0])
    assert abs(mass - 1.0) < 1e-3


def test_device_auto_resolves_to_an_available_device(blobs):
    train, _ = blobs
    detector = FlowDetector(max_epochs=1, random_state=0).fit(train)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert detector.device_.type == expected


def test_noise_regularisation_widens_the_density(blobs):
    train, _ = blobs
    sharp = FlowDetector(noise_std=0.0, max_epochs=40, random_state=0).fit(train)
    wide = FlowDetector(noise_std=1.0, max_epochs=40, random_state=0).fit(train)
    far = train * 4
    # training rows get less density, far rows more, when the flow learned noisy copies
    assert wide.log_likelihood(train).mean() < sharp.log_likelihood(train).mean()
    assert wide.log_likelihood(far).mean() > sharp.log_likelihood(far).mean()


def test_trimmed_likelihood_resists_contaminated_training_data():
    """Anomalies that form 10% of the training rows are learned as normal unless trimmed away."""
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(900, 2))
    cluster = rng.normal(loc=(6, 6), scale=0.2, size=(100, 2))
    train = np.vstack([normal, cluster])
    test = np.vstack([rng.normal(size=(200, 2)), rng.normal(loc=(6, 6), scale=0.2, size=(50, 2))])
    y = np.r_[np.zeros(200), np.ones(50)]
    plain = FlowDetector(max_epochs=60, random_state=0).fit(train)
    trimmed = FlowDetector(options=FlowOptions(trim_fraction=0.2), max_epochs=60, random_state=0).fit(train)
    assert roc_auc(y, -trimmed.score_samples(test)) > roc_auc(y, -plain.score_samples(test)) + 0.05
    assert roc_auc(y, -trimmed.score_samples(test)) > 0.9


def test_flow_mixture_is_the_mean_of_its_members_densities(blobs):
    """n_flows=3: log p(x) = log((1/3) sum_k p_k(x)); the flows are those of n_flows=5's first three."""
    train, (test, _) = blobs
    mixture = FlowEnsembleDetector(max_epochs=5, n_flows=3, random_state=3).fit(train)
    larger = FlowEnsembleDetector(max_epochs=5, n_flows=5, random_state=3).fit(train)
    x = torch.as_tensor(mixture.scaler_.model_input(test))
    with torch.no_grad():
        members = np.stack([m().log_prob(x).numpy() for m in mixture.flow_.members])
        np.testing.assert_allclose(mixture.flow_().log_prob(x).numpy(),
                                   np.log(np.exp(members).mean(axis=0)), rtol=1e-10, atol=1e-10)
        for k in range(3):
            np.testing.assert_array_equal(members[k], larger.flow_.members[k]().log_prob(x).numpy())
    assert not np.allclose(members[1], members[0]) and not np.allclose(members[2], members[1])
    assert mixture.member_epochs_ == [5, 5, 5]
    with pytest.raises(ValueError, match="latent codes need a single flow"):
        mixture.latent_codes(test)


def test_bagged_flows_split_the_rows_left_after_the_threshold_slice():
    """Each flow of an ensemble trains and stops early on its own split of the non-threshold rows."""
    from flowad.models.tabular_flow.estimator import _member_seeds, _member_split

    train_idx, val_idx = np.arange(20, 200), np.arange(20)
    assert _member_split(train_idx, val_idx, 7, 1, 0.1) == (train_idx, val_idx)  # one flow: as given
    splits = [_member_split(train_idx, val_idx, seed, 3, 0.1) for seed in _member_seeds(11, 3)]
    for fit_rows, stop_rows in splits:
        assert len(np.intersect1d(fit_rows, stop_rows)) == 0
        np.testing.assert_array_equal(np.sort(np.r_[fit_rows, stop_rows]), train_idx)
        assert len(stop_rows) == 20  # the 10% share, at least MIN_VALIDATION rows
    assert not np.array_equal(splits[0][1], splits[1][1]) and not np.array_equal(splits[1][1], splits[2][1])


def test_flow_mixture_density_integrates_to_one():
    """A 1-D mixture of three flows is a normalised density: its integral over a wide grid is 1."""
    rng = np.random.default_rng(0)
    train = np.r_[rng.normal(-2, 0.5, 300), rng.normal(1.5, 1.0, 300)][:, None]
    detector = FlowEnsembleDetector(max_epochs=30, n_flows=3, noise_std=0.0, random_state=0).fit(train)
    grid = np.linspace(-100, 100, 200_001)[:, None]  # the tails of a briefly trained flow are wide
    mass = np.trapezoid(np.exp(detector.log_likelihood(grid)), grid[:, 0])
    assert abs(mass - 1.0) < 1e-3
