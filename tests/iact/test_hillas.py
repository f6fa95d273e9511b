"""Hillas parameters and MAGIC features: analytic images, equality with ctapipe, degenerate images."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from flowad.iact import (
    HILLAS_KEYS,
    MAGIC_KEYS,
    MIN_WIDTH_RATIO,
    camera_file,
    hexagonal_camera,
    hillas_parameters,
    hillas_table,
    load_camera,
    magic_features,
    rectangular_camera,
    simulate_events,
    tailcuts_clean,
)


def _ellipse(cam, x0, y0, length, width, psi, head=None, intensity=1000.0):
    """Noise-free Gaussian ellipse (split normal along psi when ``head`` is given), shape (n_pix,)."""
    dx, dy = cam.pix_x - x0, cam.pix_y - y0
    lon = dx * np.cos(psi) + dy * np.sin(psi)
    tra = -dx * np.sin(psi) + dy * np.cos(psi)
    sig_l = length if head is None else np.where(lon < 0, head, length)
    return (
        intensity
        * np.exp(-0.5 * ((lon / sig_l) ** 2 + (tra / width) ** 2))
        * cam.pix_area
        / (2 * np.pi * length * width)
    )


@pytest.mark.parametrize(
    ("cam", "length", "width", "psi"),
    [
        (rectangular_camera(140, 140, 0.005), 0.07, 0.03, 0.6),
        (rectangular_camera(140, 140, 0.005), 0.06, 0.02, -1.2),
        (hexagonal_camera(60, 0.006), 0.045, 0.02, 1.4),
    ],
    ids=["rect", "rect-negative-psi", "hex"],
)
def test_analytic_ellipse(cam, length: float, width: float, psi: float) -> None:
    x0, y0 = 0.04, -0.03
    image = _ellipse(cam, x0, y0, length, width, psi)
    h = hillas_parameters(cam.pix_x, cam.pix_y, image[None], pix_area=cam.pix_area)
    assert h["valid"][0]
    np.testing.assert_allclose(h["intensity"][0], image.sum())
    np.testing.assert_allclose([h["x"][0], h["y"][0]], [x0, y0], atol=1e-6)
    np.testing.assert_allclose(h["r"][0], np.hypot(x0, y0), rtol=1e-4)
    np.testing.assert_allclose(h["phi"][0], np.arctan2(y0, x0), rtol=1e-4)
    np.testing.assert_allclose(h["length"][0], length, rtol=1e-3)
    np.testing.assert_allclose(h["width"][0], width, rtol=1e-3)
    np.testing.assert_allclose(h["psi"][0], psi, atol=1e-4)
    assert abs(h["skewness"][0]) < 1e-3
    np.testing.assert_allclose(h["kurtosis"][0], 3.0, rtol=1e-3)  # Gaussian


def test_skewness_sign_follows_psi() -> None:
    cam = rectangular_camera(120, 120, 0.005)
    psi = 0.5
    tail_forward = _ellipse(cam, 0.0, 0.0, 0.08, 0.02, psi, head=0.04)  # long tail towards +psi
    tail_backward = _ellipse(cam, 0.0, 0.0, 0.08, 0.02, psi + np.pi, head=0.04)  # same axis, tail towards -psi
    h = hillas_parameters(cam.pix_x, cam.pix_y, np.stack([tail_forward, tail_backward]))
    np.testing.assert_allclose(h["psi"], psi, atol=1e-3)  # psi is defined modulo pi, in (-pi/2, pi/2]
    assert h["skewness"][0] > 0.3 and h["skewness"][1] < -0.3
    np.testing.assert_allclose(h["skewness"][0], -h["skewness"][1], rtol=1e-6)


def _ctapipe_values(result, u) -> dict[str, float]:
    values = {"intensity": result.intensity, "skewness": result.skewness, "kurtosis": result.kurtosis}
    for key in ("x", "y", "r", "length", "width", "length_uncertainty", "width_uncertainty"):
        values[key] = getattr(result, key).to_value(u.m)
    values["transverse_cog_uncertainty"] = result.transverse_cog_uncertainty.to_value(u.m)
    for key in ("phi", "psi", "psi_uncertainty"):  # Angle objects in radians (the container fields say deg)
        values[key] = getattr(result, key).to_value(u.rad)
    return values


@pytest.mark.parametrize("name", ["magic", "lst"])
def test_equals_ctapipe(name: str) -> None:
    u = pytest.importorskip("astropy.units")
    instrument = pytest.importorskip("ctapipe.instrument", reason="ctapipe is the reference implementation")
    image_mod = pytest.importorskip("ctapipe.image", reason="ctapipe is the reference implementation")
    geom = instrument.CameraGeometry.from_table(camera_file(name))
    cam = load_camera(name)
    images, _, _ = simulate_events(cam, 60, gamma_fraction=0.5, muon_fraction=0.1, random_state=11)
    masks = tailcuts_clean(cam, images, 6, 3)
    clean = np.where(masks, images, 0.0)
    h = hillas_parameters(cam.pix_x, cam.pix_y, clean, pix_area=cam.pix_area)
    n_compared = 0
    for i in np.flatnonzero(masks.sum(axis=1) >= 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            ref = _ctapipe_values(image_mod.hillas_parameters(geom[masks[i]], clean[i, masks[i]]), u)
        if not all(np.isfinite(v) for v in ref.values()) or ref["width"] <= MIN_WIDTH_RATIO * ref["length"]:
            assert not h["valid"][i]  # NaN in ctapipe, or pixels on a line (width is rounding noise)
            continue
        assert h["valid"][i]
        n_compared += 1
        for key, expected in ref.items():
            got = h[key][i]
            diff = abs((got - expected + np.pi / 2) % np.pi - np.pi / 2) if key == "psi" else abs(got - expected)
            assert diff <= 1e-6 * max(abs(expected), 1e-12), (key, i, got, expected)
    assert n_compared >= 35


def test_degenerate_images_are_flagged_without_nan() -> None:
    cam = hexagonal_camera(3, 0.03)
    images = np.zeros((6, cam.n_pixels))
    images[1, 0] = 5.0  # one pixel
    images[2, [0, 1]] = [5.0, 3.0]  # two pixels: zero width
    line = np.flatnonzero(np.isclose(cam.pix_y, 0.0))
    images[3, line] = np.arange(1.0, line.size + 1)  # pixels on one line
    images[4, [0, 1, 2]] = [-5.0, 1.0, 1.0]  # negative intensity
    images[5, [0, 1, 2]] = [5.0, 3.0, 4.0]  # a real (tiny) image
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = hillas_parameters(cam.pix_x, cam.pix_y, images, pix_area=cam.pix_area)
        feats = magic_features(cam.pix_x, cam.pix_y, images, h)
    np.testing.assert_array_equal(h["valid"], [False, False, False, False, False, True])
    for key, value in {**h, **feats}.items():
        assert value.shape == (6,)
        assert np.all(np.isfinite(value)), key
        if key != "valid":
            assert np.all(value[:5] == 0), key
    assert set(HILLAS_KEYS) | {"psi_uncertainty", "transverse_cog_uncertainty", "valid"} == set(h)
    empty = hillas_parameters(cam.pix_x, cam.pix_y, np.zeros((0, cam.n_pixels)))
    assert empty["valid"].shape == (0,)


def test_batch_and_chunks_agree() -> None:
    cam = load_camera("magic")
    images, _, _ = simulate_events(cam, 40, random_state=5)
    clean = np.where(tailcuts_clean(cam, images, 6, 3), images, 0.0)
    full = hillas_parameters(cam.pix_x, cam.pix_y, clean, chunk_size=4096)
    chunked = hillas_parameters(cam.pix_x, cam.pix_y, clean, chunk_size=7)
    single = hillas_parameters(cam.pix_x, cam.pix_y, clean[13])
    for key in full:
        np.testing.assert_allclose(full[key], chunked[key], rtol=1e-12, atol=0)
        np.testing.assert_allclose(full[key][13], single[key][0], rtol=1e-12, atol=0)


def test_magic_features_geometry() -> None:
    cam = rectangular_camera(140, 140, 0.005)
    # ellipse at (0.12, 0): radial (psi = 0) and tilted by 30 degrees, tail away from / towards the source
    images = np.stack(
        [
            _ellipse(cam, 0.12, 0.0, 0.04, 0.015, 0.0, head=0.02),
            _ellipse(cam, 0.12, 0.0, 0.04, 0.015, np.pi / 6),  # symmetric: the cog stays at (0.12, 0)
            _ellipse(cam, 0.12, 0.0, 0.04, 0.015, np.pi, head=0.02),
        ]
    )
    h = hillas_parameters(cam.pix_x, cam.pix_y, images)
    f = magic_features(cam.pix_x, cam.pix_y, images, h, source=(0.0, 0.0))
    assert set(f) == set(MAGIC_KEYS)
    np.testing.assert_allclose(np.degrees(f["alpha"]), [0.0, 30.0, 0.0], atol=0.1)
    np.testing.assert_allclose(f["dist"], np.hypot(h["x"], h["y"]))
    np.testing.assert_allclose(f["log10_intensity"], np.log10(h["intensity"]))
    np.testing.assert_allclose(f["conc1"], images.max(axis=1) / images.sum(axis=1))
    top2 = np.sort(images, axis=1)[:, -2:].sum(axis=1)
    np.testing.assert_allclose(f["conc"], top2 / images.sum(axis=1))
    # axis oriented away from the source: tail outwards -> m3long > 0 and the peak (head) behind the cog
    assert f["m3long"][0] > 0 and f["asym"][0] < 0
    assert f["m3long"][2] < 0 and f["asym"][2] > 0
    assert abs(f["m3trans"][0]) < 1e-3 * abs(f["m3long"][0])  # symmetric across the axis
    # seen from a source on the other side, the signs flip
    g = magic_features(cam.pix_x, cam.pix_y, images, h, source=(0.4, 0.0))
    np.testing.assert_allclose(g["m3long"][[0, 2]], -f["m3long"][[0, 2]])
    np.testing.assert_allclose(g["asym"][[0, 2]], -f["asym"][[0, 2]])


def test_hillas_table_and_gamma_hadron_alpha() -> None:
    cam = load_camera("magic")
    images, labels, _ = simulate_events(cam, 400, gamma_fraction=0.5, random_state=2)
    clean = np.where(tailcuts_clean(cam, images, 6, 3), images, 0.0)
    table = hillas_table(cam.pix_x, cam.pix_y, clean, pix_area=cam.pix_area)
    assert list(table.columns) == [*HILLAS_KEYS, "psi_uncertainty", "transverse_cog_uncertainty", "valid", *MAGIC_KEYS]
    assert len(table) == 400 and np.isfinite(table.to_numpy(dtype=float)).all()
    ok = table["valid"].to_numpy()
    alpha = np.degrees(table["alpha"].to_numpy())
    assert alpha[ok & (labels == 0)].mean() < 10 < 30 < alpha[ok & (labels == 1)].mean()


def test_bad_input() -> None:
    cam = hexagonal_camera(2, 0.03)
    with pytest.raises(ValueError, match="images"):
        hillas_parameters(cam.pix_x, cam.pix_y, np.zeros((2, 5)))
    with pytest.raises(ValueError, match="images must be finite"):
        hillas_parameters(cam.pix_x, cam.pix_y, np.full((1, cam.n_pixels), np.inf))
    one_nan = np.zeros((3, cam.n_pixels), dtype=np.float32)
    one_nan[2, 4] = np.nan  # a single NaN in a mostly empty float32 batch is still found
    with pytest.raises(ValueError, match="images must be finite"):
        hillas_parameters(cam.pix_x, cam.pix_y, one_nan)
    with pytest.raises(ValueError, match="pix_y"):
        hillas_parameters(cam.pix_x, cam.pix_y[:-1], np.zeros((1, cam.n_pixels)))
    with pytest.raises(ValueError, match="pix_area"):
        hillas_parameters(cam.pix_x, cam.pix_y, np.zeros((1, cam.n_pixels)), pix_area=-1.0)
    with pytest.raises(ValueError, match="hillas"):
        magic_features(cam.pix_x, cam.pix_y, np.zeros((1, cam.n_pixels)), {"x": np.zeros(1)})
