"""Camera geometries: real MAGIC/LST tables, synthetic cameras, neighbour lists equal to ctapipe's."""

from __future__ import annotations

import numpy as np
import pytest

from flowad.iact import CameraGeometry, camera_file, hexagonal_camera, load_camera, neighbor_matrix, rectangular_camera


def _ctapipe_geometry(cam: CameraGeometry):
    """ctapipe's CameraGeometry built from the same arrays (metres)."""
    u = pytest.importorskip("astropy.units")
    ctapipe_geom = pytest.importorskip("ctapipe.instrument", reason="ctapipe is the reference implementation")
    return ctapipe_geom.CameraGeometry(
        name=cam.name,
        pix_id=np.arange(cam.n_pixels),
        pix_x=cam.pix_x * u.m,
        pix_y=cam.pix_y * u.m,
        pix_area=cam.pix_area * u.m**2,
        pix_type=cam.pix_type,
    )


@pytest.mark.parametrize(("name", "n_pix", "width"), [("magic", 1039, 0.030), ("lst", 1855, 0.050)])
def test_load_real_camera(name: str, n_pix: int, width: float) -> None:
    cam = load_camera(name)
    assert cam.n_pixels == n_pix
    assert cam.pix_type == "hexagon"
    np.testing.assert_allclose(cam.pixel_width, width, rtol=0.06)  # metres: 0.1 deg pixels
    assert cam.neighbors.shape == (n_pix, n_pix)
    assert (cam.neighbors != cam.neighbors.T).nnz == 0
    counts = np.asarray(cam.neighbors.sum(axis=1)).ravel()
    assert counts.max() == 6 and counts.min() >= 2
    with pytest.raises(ValueError):
        cam.pix_x[0] = 1.0  # read-only


@pytest.mark.parametrize("name", ["magic", "lst"])
def test_real_camera_matches_ctapipe(name: str) -> None:
    u = pytest.importorskip("astropy.units")
    instrument = pytest.importorskip("ctapipe.instrument", reason="ctapipe is the reference implementation")
    ref = instrument.CameraGeometry.from_table(camera_file(name))
    cam = load_camera(name)
    assert cam.name == ref.name
    np.testing.assert_array_equal(cam.pix_x, ref.pix_x.to_value(u.m))
    np.testing.assert_array_equal(cam.pix_y, ref.pix_y.to_value(u.m))
    np.testing.assert_array_equal(cam.pix_area, ref.pix_area.to_value(u.m**2))
    np.testing.assert_allclose(cam.pixel_width, ref.pixel_width.to_value(u.m))
    assert cam.neighbor_lists() == [sorted(n) for n in ref.neighbors]


@pytest.mark.parametrize(
    "cam",
    [hexagonal_camera(6, 0.02), rectangular_camera(9, 6, 0.025), rectangular_camera(1, 5, 0.01)],
    ids=["hex", "rect", "column"],
)
def test_synthetic_camera_neighbours_match_ctapipe(cam: CameraGeometry) -> None:
    ref = _ctapipe_geometry(cam)
    assert cam.neighbor_lists() == [sorted(n) for n in ref.neighbors]
    np.testing.assert_allclose(cam.pixel_width, ref.pixel_width.value)


def test_square_diagonal_neighbours_match_ctapipe() -> None:
    cam = rectangular_camera(6, 5, 0.02)
    ref = _ctapipe_geometry(cam).calc_pixel_neighbors(diagonal=True).toarray()
    np.testing.assert_array_equal(neighbor_matrix(cam.pix_x, cam.pix_y, "square", diagonal=True).toarray(), ref)


@pytest.mark.parametrize("rings", [0, 1, 4])
def test_hexagonal_camera_layout(rings: int) -> None:
    cam = hexagonal_camera(rings, pixel_size=0.03)
    assert cam.n_pixels == 1 + 3 * rings * (rings + 1)
    assert cam.pix_x[0] == 0.0 and cam.pix_y[0] == 0.0
    np.testing.assert_allclose(cam.pixel_width, 0.03)
    if rings:
        counts = np.asarray(cam.neighbors.sum(axis=1)).ravel()
        inner = np.hypot(cam.pix_x, cam.pix_y) < 0.03 * (np.sqrt(3) / 2 * rings - 0.1)  # rings < outermost
        assert np.all(counts[inner] == 6)
        assert counts.min() == 3  # corner pixels of the hexagon


def test_rectangular_camera_layout() -> None:
    cam = rectangular_camera(4, 3, pixel_size=0.1)
    np.testing.assert_allclose(cam.pix_x[:4], [-0.15, -0.05, 0.05, 0.15])
    np.testing.assert_allclose(cam.pix_y[::4], [-0.1, 0.0, 0.1])
    lists = cam.neighbor_lists()
    assert lists[0] == [1, 4]  # corner
    assert lists[5] == [1, 4, 6, 9]  # interior: edge neighbours only


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="name"):
        load_camera("veritas")
    with pytest.raises(ValueError, match="rings"):
        hexagonal_camera(-1)
    with pytest.raises(ValueError, match="pixel_size"):
        rectangular_camera(3, 3, pixel_size=0.0)
    with pytest.raises(ValueError, match="pix_y"):
        CameraGeometry("x", np.zeros(3), np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="pix_area"):
        CameraGeometry("x", np.arange(3.0), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="pix_type"):
        CameraGeometry("x", np.arange(3.0), np.zeros(3), np.ones(3), pix_type="triangle")
