"""score_type="hybrid": the flow's log-likelihood plus a k-NN log-density over its inputs."""

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

from flowad import FlowDetector, io
from flowad.models.tabular_flow import neighbours
from tests.conftest import FAST


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = np.c_[rng.normal(size=(600, 3)), rng.integers(0, 4, 600)]  # a discrete column too
    test = np.r_[np.c_[rng.normal(size=(200, 3)), rng.integers(0, 4, 200)], rng.uniform(-8, 8, size=(20, 4))]
    return X, test


def test_hybrid_is_the_log_likelihood_plus_the_knn_log_density():
    X, test = _data()
    detector = FlowDetector(score_type="hybrid", random_state=0, **FAST["maf"]).fit(X)
    graph = detector.scoring_
    rows = torch.as_tensor(X, dtype=torch.float64)
    reference = graph.model_inputs(rows).numpy()  # every training row is normal and fewer than the limit
    np.testing.assert_allclose(graph.neighbours.reference.numpy(), reference)
    queries = graph.model_inputs(torch.as_tensor(test, dtype=torch.float64)).numpy()
    r5 = NearestNeighbors(n_neighbors=5).fit(reference).kneighbors(queries)[0][:, -1]
    expected = detector.log_likelihood(test) - reference.shape[1] * np.log(r5)
    np.testing.assert_allclose(detector.score_samples(test), expected, rtol=1e-9)
    assert detector.score_samples(test)[200:].mean() < detector.score_samples(test)[:200].mean()


def test_hybrid_threshold_flags_about_the_asked_share_of_new_normal_rows():
    rng = np.random.default_rng(1)
    X, new = rng.normal(size=(3000, 3)), rng.normal(size=(20000, 3))
    detector = FlowDetector(score_type="hybrid", contamination=0.05, random_state=0, **FAST["maf"]).fit(X)
    rate = (detector.predict(new) == -1).mean()
    assert 0.035 < rate < 0.07, rate  # cross-fitted: each calibration score comes from a model without that row


def test_hybrid_models_save_load_and_score_alike(tmp_path):
    X, test = _data()
    detector = FlowDetector(score_type="hybrid", random_state=0, **FAST["maf"]).fit(X)
    io.save(detector, tmp_path / "model")
    loaded = io.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.score_samples(test), detector.score_samples(test))
    np.testing.assert_array_equal(loaded.predict(test), detector.predict(test))


def test_hybrid_needs_a_fit_that_kept_the_reference():
    X, test = _data()
    detector = FlowDetector(random_state=0, **FAST["maf"]).fit(X)
    assert detector.scoring_.neighbours is None  # an nll model keeps no training rows
    detector.set_params(score_type="hybrid")
    with pytest.raises(ValueError, match="score_type='hybrid'.*refit"):
        detector.score_samples(test)


def test_the_reference_is_a_random_subset_of_large_training_sets(monkeypatch):
    monkeypatch.setattr(neighbours, "REFERENCE_ROWS", 100)
    picked = neighbours.reference_rows(1000, np.random.default_rng(0))
    assert len(picked) == 100 and len(set(picked)) == 100 and (np.diff(picked) > 0).all()
    assert len(neighbours.reference_rows(50, np.random.default_rng(0))) == 50
    X, test = _data()  # 600 training rows: the fitted model keeps 100 of them
    detector = FlowDetector(score_type="hybrid", calibration="split", random_state=0, **FAST["maf"]).fit(X)
    reference = detector.scoring_.neighbours.reference.numpy()
    assert reference.shape == (100, 4)
    inputs = detector.scoring_.model_inputs(torch.as_tensor(X, dtype=torch.float64)).numpy()
    assert all(np.isclose(inputs, row).all(axis=1).any() for row in reference)  # each one a training row


def test_distance_blocks_give_the_same_neighbours_as_one_pass(monkeypatch):
    rng = np.random.default_rng(0)
    reference, queries = torch.as_tensor(rng.normal(size=(1300, 3))), torch.as_tensor(rng.normal(size=(40, 3)))
    monkeypatch.setattr(neighbours, "BLOCK_ROWS", 128)  # 11 blocks, the last one short
    blocked = neighbours.NeighbourDistance(reference)(queries).numpy()
    r5 = NearestNeighbors(n_neighbors=5).fit(reference.numpy()).kneighbors(queries.numpy())[0][:, -1]
    np.testing.assert_allclose(blocked, np.log(r5), rtol=1e-10)
    # a query on top of five reference rows is floored, not -inf
    stacked = neighbours.NeighbourDistance(torch.zeros(5, 3, dtype=torch.float64))(torch.zeros(1, 3))
    assert float(stacked) == pytest.approx(np.log(neighbours.DISTANCE_FLOOR))


def test_squared_distances_are_the_k_nearest_across_blocks(monkeypatch):
    monkeypatch.setattr(neighbours, "BLOCK_ROWS", 7)  # many blocks, so the running top-k is used
    rng = np.random.default_rng(3)
    reference, queries = rng.normal(size=(50, 4)), rng.normal(size=(12, 4))
    got = neighbours.NeighbourDistance(torch.from_numpy(reference), k=6).squared_distances(torch.from_numpy(queries))
    expected = NearestNeighbors(n_neighbors=6).fit(reference).kneighbors(queries)[0] ** 2
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9)
