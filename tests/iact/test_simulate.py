"""Toy IACT event simulator: reproducibility, class shares, pointing of gammas, npz round trip."""

from __future__ import annotations

import numpy as np
import pytest

from flowad.iact import (
    TRUTH_KEYS,
    hexagonal_camera,
    hillas_parameters,
    load_camera,
    load_events,
    magic_features,
    save_events,
    simulate_events,
    tailcuts_clean,
)


@pytest.fixture(scope="module")
def magic():
    return load_camera("magic")


def test_shapes_and_reproducibility(magic) -> None:
    images, labels, truth = simulate_events(magic, 50, muon_fraction=0.1, random_state=7)
    assert images.shape == (50, magic.n_pixels) and images.dtype == np.float32
    assert labels.shape == (50,) and labels.dtype == np.int64
    assert set(truth) == set(TRUTH_KEYS) and all(v.shape == (50,) for v in truth.values())
    assert np.isfinite(images).all()
    again = simulate_events(magic, 50, muon_fraction=0.1, random_state=7)
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(labels, again[1])
    for key in TRUTH_KEYS:
        np.testing.assert_array_equal(truth[key], again[2][key])
    other = simulate_events(magic, 50, muon_fraction=0.1, random_state=8)
    assert not np.array_equal(images, other[0])
    # a Generator is accepted too and consumed like a seed
    gen = simulate_events(magic, 50, muon_fraction=0.1, random_state=np.random.default_rng(7))
    np.testing.assert_array_equal(images, gen[0])


@pytest.mark.parametrize(("n", "gamma", "muon"), [(200, 0.5, 0.0), (101, 0.3, 0.1), (40, 1.0, 0.0), (30, 0.0, 1.0)])
def test_label_shares(magic, n: int, gamma: float, muon: float) -> None:
    _, labels, truth = simulate_events(magic, n, gamma_fraction=gamma, muon_fraction=muon, random_state=0)
    n_gamma, n_muon = round(n * gamma), round(n * muon)
    assert np.bincount(labels, minlength=3).tolist() == [n_gamma, n - n_gamma - n_muon, n_muon]
    assert np.all(truth["ring_radius"][labels != 2] == 0) and np.all(truth["ring_radius"][labels == 2] > 0)
    assert np.all(truth["n_components"][labels == 0] == 1)
    assert np.all((truth["n_components"][labels == 1] >= 2) & (truth["n_components"][labels == 1] <= 4))
    if 0 < n_gamma < n:
        assert 0 < np.flatnonzero(labels == 0).mean() < n - 1  # shuffled, not sorted


@pytest.mark.parametrize("source", [(0.0, 0.0), (0.08, -0.05)])
def test_gammas_point_back_to_the_source(magic, source: tuple[float, float]) -> None:
    images, labels, truth = simulate_events(magic, 400, source=source, random_state=1)
    clean = np.where(tailcuts_clean(magic, images, 6, 3), images, 0.0)
    h = hillas_parameters(magic.pix_x, magic.pix_y, clean)
    alpha = np.degrees(magic_features(magic.pix_x, magic.pix_y, clean, h, source=source)["alpha"])
    gamma, hadron = h["valid"] & (labels == 0), h["valid"] & (labels == 1)
    assert gamma.sum() > 150 and hadron.sum() > 120
    assert alpha[gamma].mean() < 8.0 and np.median(alpha[gamma]) < 5.0
    assert alpha[hadron].mean() > 30.0
    assert np.median(h["width"][gamma] / h["length"][gamma]) < np.median(h["width"][hadron] / h["length"][hadron])
    # true axis of gammas points back to the source within the 0.05 rad scatter
    direction = np.arctan2(truth["y"] - source[1], truth["x"] - source[0])
    miss = np.abs((truth["psi"] - direction + np.pi / 2) % np.pi - np.pi / 2)
    assert np.percentile(miss[labels == 0], 99) < 0.2


def test_noise_and_intensity(magic) -> None:
    images, _, truth = simulate_events(magic, 300, nsb=2.0, noise=0.5, random_state=4)
    assert truth["intensity"].min() >= 100.0 and truth["intensity"].max() <= 10000.0
    assert np.median(truth["intensity"]) < 400  # power law with index 2 from 100 p.e.
    # pixels far from all light carry pedestal-subtracted noise: mean ~0, variance nsb + noise**2
    quiet = images[:, np.hypot(magic.pix_x, magic.pix_y) > 0.45]
    assert abs(np.median(quiet)) < 1.0 and 1.5 < quiet.var() < 4.0
    flat, _, _ = simulate_events(hexagonal_camera(4), 5, nsb=0.0, noise=0.0, intensity_range=(1.0, 1.0), random_state=0)
    assert np.all(flat == np.round(flat))  # no noise: whole photo-electrons


def test_save_load_round_trip(magic, tmp_path) -> None:
    images, labels, truth = simulate_events(magic, 20, muon_fraction=0.2, random_state=3)
    path = save_events(tmp_path / "events.npz", images, labels, truth, camera_name=magic.name)
    images2, labels2, truth2 = load_events(path)
    np.testing.assert_array_equal(images, images2)
    np.testing.assert_array_equal(labels, labels2)
    assert set(truth2) == set(truth)
    for key in truth:
        np.testing.assert_array_equal(truth[key], truth2[key])
    assert str(np.load(path)["camera_name"]) == "MAGICCam"
    assert [p.name for p in tmp_path.iterdir()] == ["events.npz"]  # no temporary file left


def test_bad_input(magic) -> None:
    with pytest.raises(ValueError, match="n_events"):
        simulate_events(magic, -1)
    with pytest.raises(ValueError, match="gamma_fraction"):
        simulate_events(magic, 10, gamma_fraction=1.5)
    with pytest.raises(ValueError, match="muon_fraction"):
        simulate_events(magic, 10, gamma_fraction=0.8, muon_fraction=0.5)
    with pytest.raises(ValueError, match="intensity_range"):
        simulate_events(magic, 10, intensity_range=(10.0, 1.0))
    with pytest.raises(ValueError, match="nsb"):
        simulate_events(magic, 10, nsb=-1.0)
    with pytest.raises(ValueError, match="labels"):
        save_events("unused.npz", np.zeros((3, 4)), np.zeros(2))
