"""Tail-cuts cleaning: a hand-built image with a known result and equality with ctapipe."""

from __future__ import annotations

import numpy as np
import pytest

from flowad.iact import camera_file, load_camera, rectangular_camera, simulate_events, tailcuts_clean


def _grid_image() -> np.ndarray:
    """5 x 5 square camera, pixel (row, col) = 5 * row + col."""
    image = np.zeros(25)
    image[12] = 10.0  # (2, 2) picture
    image[13] = 6.0  # (2, 3) boundary, next to the picture pixel
    image[0] = 10.0  # (0, 0) isolated picture pixel
    image[24] = 6.0  # (4, 4) boundary pixel without a picture neighbour
    image[11] = 3.0  # (2, 1) below the boundary threshold
    image[7] = 7.0  # (1, 2) picture pixel (>= is inclusive) next to 12
    return image


def test_hand_built_image() -> None:
    cam = rectangular_camera(5, 5, 0.03)
    image = _grid_image()
    expected = np.zeros(25, dtype=bool)
    expected[[7, 12, 13]] = True
    np.testing.assert_array_equal(tailcuts_clean(cam, image, 7, 5), expected)
    # keep_isolated_pixels keeps the lone picture pixel 0
    expected_iso = expected.copy()
    expected_iso[0] = True
    np.testing.assert_array_equal(tailcuts_clean(cam, image, 7, 5, keep_isolated_pixels=True), expected_iso)
    # with 2 picture neighbours required no pixel qualifies as picture, so nothing survives
    assert not tailcuts_clean(cam, image, 7, 5, min_number_picture_neighbors=2).any()
    # 1 picture neighbour: 7 and 12 support each other; 13 rides on 12
    np.testing.assert_array_equal(tailcuts_clean(cam, image, 7, 5, min_number_picture_neighbors=1), expected)
    # a boundary threshold of 3 adds pixel 11 (neighbour of 12)
    expected_low = expected.copy()
    expected_low[11] = True
    np.testing.assert_array_equal(tailcuts_clean(cam, image, 7, 3), expected_low)


def test_batch_equals_single_and_per_pixel_thresholds() -> None:
    cam = rectangular_camera(5, 5, 0.03)
    image = _grid_image()
    batch = np.stack([image, np.zeros(25), image[::-1]])
    masks = tailcuts_clean(cam, batch, 7, 5)
    assert masks.shape == (3, 25) and masks.dtype == bool
    for i in range(3):
        np.testing.assert_array_equal(masks[i], tailcuts_clean(cam, batch[i], 7, 5))
    # per-pixel thresholds: pixel 7 becomes a boundary pixel (still kept, next to 12); pixel 13 is dropped
    picture = np.full(25, 7.0)
    picture[7] = 8.0
    boundary = np.full(25, 5.0)
    boundary[13] = 6.5
    expected = np.zeros(25, dtype=bool)
    expected[[7, 12]] = True
    np.testing.assert_array_equal(tailcuts_clean(cam, image, picture, boundary), expected)


SETTINGS = [
    {"picture_thresh": 7, "boundary_thresh": 5},
    {"picture_thresh": 6, "boundary_thresh": 3, "min_number_picture_neighbors": 2},
    {"picture_thresh": 8, "boundary_thresh": 4, "keep_isolated_pixels": True},
]


@pytest.mark.parametrize("name", ["magic", "lst"])
def test_equals_ctapipe(name: str) -> None:
    instrument = pytest.importorskip("ctapipe.instrument", reason="ctapipe is the reference implementation")
    ref_clean = pytest.importorskip("ctapipe.image", reason="ctapipe is the reference implementation").tailcuts_clean
    geom = instrument.CameraGeometry.from_table(camera_file(name))
    cam = load_camera(name)
    images, _, _ = simulate_events(cam, 150, gamma_fraction=0.4, muon_fraction=0.1, nsb=2.0, random_state=3)
    rng = np.random.default_rng(0)
    per_pixel = {"picture_thresh": rng.uniform(5, 8, cam.n_pixels), "boundary_thresh": rng.uniform(2, 5, cam.n_pixels)}
    for kwargs in [*SETTINGS, per_pixel]:
        masks = tailcuts_clean(cam, images, **kwargs)
        expected = np.array([ref_clean(geom, image, **kwargs) for image in images])
        np.testing.assert_array_equal(masks, expected)
        assert masks.any(axis=1).mean() > 0.5  # the comparison is not trivially all-empty


def test_bad_input() -> None:
    cam = rectangular_camera(3, 3, 0.03)
    with pytest.raises(ValueError, match="images"):
        tailcuts_clean(cam, np.zeros((2, 8)))
    with pytest.raises(ValueError, match="images"):
        tailcuts_clean(cam, np.full((1, 9), np.nan))
    with pytest.raises(ValueError, match="picture_thresh"):
        tailcuts_clean(cam, np.zeros(9), picture_thresh=np.ones(4))
    with pytest.raises(ValueError, match="min_number_picture_neighbors"):
        tailcuts_clean(cam, np.zeros(9), min_number_picture_neighbors=-1)
