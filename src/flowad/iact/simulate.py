"""A *toy* simulator of IACT camera images: gamma showers, hadron showers and muon rings.

This is not an air-shower simulation (no CORSIKA, no optics, no trigger). It draws images with the
qualitative features that Hillas-parameter gamma/hadron separation relies on:

- **gamma** (label 0): one elliptical 2-D Gaussian whose major axis points back to the source
  position (up to a small angular scatter), narrow (width / length 0.25 - 0.5) and skewed along the
  axis (a split normal: the head, towards the source, is shorter than the tail);
- **hadron** (label 1): 2 - 4 broader Gaussian sub-showers with random orientations, positions
  scattered around a main component anywhere in the camera, i.e. wide, irregular images that do
  not point to the source;
- **muon** (label 2, optional): a ring of light of about 1 degree radius (10 pixel widths) with an
  azimuthal brightness modulation, clipped by the camera edge.

Shower sizes are in units of the camera's pixel width (about 0.1 degree for MAGIC and LST), so the
same settings work on both cameras. The total intensity of showers follows a power law
``dN/dI ~ I**-intensity_index`` between ``intensity_range`` (index 1: log-uniform); the expected
photo-electrons of a pixel are ``I * density(pixel centre) * pixel area`` (light outside the camera is
lost). Pixel charges are Poisson photo-electrons plus Poisson night-sky background of mean ``nsb``,
pedestal-subtracted (the mean ``nsb`` is removed), plus Gaussian electronic noise of width ``noise``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from flowad.iact.camera import CameraGeometry

__all__ = ["LABEL_NAMES", "TRUTH_KEYS", "load_events", "save_events", "simulate_events"]

logger = logging.getLogger(__name__)

#: Class labels of :func:`simulate_events`.
LABEL_NAMES: dict[int, str] = {0: "gamma", 1: "hadron", 2: "muon"}
#: Keys of the truth dictionary, each an array of shape ``(n_events,)``.
TRUTH_KEYS: tuple[str, ...] = ("intensity", "x", "y", "psi", "length", "width", "skew", "ring_radius", "n_components")
_MAX_COMPONENTS = 4


def _power_law(rng: np.random.Generator, n: int, low: float, high: float, index: float) -> np.ndarray:
    u = rng.uniform(size=n)
    if np.isclose(index, 1.0):
        return low * (high / low) ** u
    e = 1.0 - index
    return (low**e + u * (high**e - low**e)) ** (1.0 / e)


def _disk(rng: np.random.Generator, n: int, radius: float) -> tuple[np.ndarray, np.ndarray]:
    rho = radius * np.sqrt(rng.uniform(size=n))
    ang = rng.uniform(-np.pi, np.pi, size=n)
    return rho * np.cos(ang), rho * np.sin(ang)


def _wrap_half(angle: np.ndarray) -> np.ndarray:
    """Map an axis direction to ``(-pi/2, pi/2]`` (an axis is defined modulo pi)."""
    return np.pi / 2 - np.mod(np.pi / 2 - angle, np.pi)


def _check_fraction(value: float, name: str) -> float:
    if not np.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def simulate_events(
    camera: CameraGeometry,
    n_events: int,
    gamma_fraction: float = 0.5,
    muon_fraction: float = 0.0,
    source: tuple[float, float] = (0.0, 0.0),
    intensity_range: tuple[float, float] = (100.0, 10000.0),
    intensity_index: float = 2.0,
    nsb: float = 1.0,
    noise: float = 0.5,
    random_state: int | np.random.Generator | None = None,
    chunk_size: int = 1024,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Simulate toy gamma, hadron and muon camera images (see the module docstring).

    Args:
        camera: Camera geometry (coordinates in metres).
        n_events: Number of events (>= 0).
        gamma_fraction: Share of gammas; exactly ``round(n_events * gamma_fraction)`` events.
        muon_fraction: Share of muon rings; exactly ``round(n_events * muon_fraction)`` events.
            The rest are hadrons. The order of the classes is shuffled.
        source: Source position ``(x, y)`` in the camera, metres; gammas point back to it.
        intensity_range: ``(low, high)`` total shower intensity in photo-electrons.
        intensity_index: Power-law index of the intensity distribution (1 = log-uniform).
        nsb: Mean night-sky-background photo-electrons per pixel (Poisson, then subtracted).
        noise: Standard deviation of the Gaussian electronic noise per pixel, photo-electrons.
        random_state: Seed or ``numpy.random.Generator``; the same seed gives identical arrays.
        chunk_size: Events rendered at once (bounds memory).

    Returns:
        ``images``: float32 pixel charges in photo-electrons, shape ``(n_events, n_pix)``;
        ``labels``: int64 class labels (0 gamma, 1 hadron, 2 muon), shape ``(n_events,)``;
        ``truth``: dict of float64 arrays of shape ``(n_events,)`` with keys :data:`TRUTH_KEYS`:
        true ``intensity`` (p.e., before clipping by the camera edge), ``x``, ``y`` (centre of the
        main light component or ring, m), ``psi`` (main axis, radians in ``(-pi/2, pi/2]``; 0 for
        muons), ``length``, ``width`` (main component's standard deviations, m; 0 for muons),
        ``skew`` (split-normal asymmetry, gammas only), ``ring_radius`` (m, muons only) and
        ``n_components`` (Gaussian components; 0 for muons).
    """
    if not isinstance(n_events, (int, np.integer)) or n_events < 0:
        raise ValueError(f"n_events must be a non-negative integer, got {n_events!r}")
    gamma_fraction = _check_fraction(gamma_fraction, "gamma_fraction")
    muon_fraction = _check_fraction(muon_fraction, "muon_fraction")
    if gamma_fraction + muon_fraction > 1.0 + 1e-12:
        raise ValueError("gamma_fraction + muon_fraction must be <= 1")
    low, high = (float(v) for v in intensity_range)
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low <= high):
        raise ValueError(f"intensity_range must be (low, high) with 0 < low <= high, got {intensity_range!r}")
    for name, value in (("nsb", nsb), ("noise", noise)):
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    if len(source) != 2 or not np.all(np.isfinite(source)):
        raise ValueError(f"source must be a finite (x, y) pair, got {source!r}")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    rng = np.random.default_rng(random_state)

    n_gamma = int(round(n_events * gamma_fraction))
    n_muon = min(int(round(n_events * muon_fraction)), n_events - n_gamma)
    labels = np.repeat(np.array([0, 1, 2]), [n_gamma, n_events - n_gamma - n_muon, n_muon])
    labels = rng.permutation(labels).astype(np.int64)

    s = float(np.median(camera.pixel_width))  # pixel width, metres
    radius = camera.radius
    sx, sy = float(source[0]), float(source[1])
    n, c_max = n_events, _MAX_COMPONENTS
    comp = {k: np.zeros((n, c_max)) for k in ("x", "y", "angle", "head", "tail", "width", "weight")}
    truth = {k: np.zeros(n) for k in TRUTH_KEYS}
    truth["intensity"] = _power_law(rng, n, low, high, intensity_index)
    log_i = np.log10(truth["intensity"] / low)

    g = labels == 0
    ng = int(g.sum())
    theta = rng.uniform(-np.pi, np.pi, size=ng)  # direction source -> shower centre
    dist = s * rng.uniform(3.0, 12.0, size=ng)
    axis = theta + rng.normal(0.0, 0.05, size=ng)  # small pointing scatter
    length = s * rng.uniform(0.9, 1.5, size=ng) * (1.0 + 0.35 * log_i[g])
    skew = rng.uniform(0.0, 0.3, size=ng)
    comp["x"][g, 0] = sx + dist * np.cos(theta)
    comp["y"][g, 0] = sy + dist * np.sin(theta)
    comp["angle"][g, 0] = axis
    comp["head"][g, 0] = length * (1.0 - skew)
    comp["tail"][g, 0] = length * (1.0 + skew)
    comp["width"][g, 0] = length * rng.uniform(0.25, 0.5, size=ng)
    comp["weight"][g, 0] = 1.0
    truth["skew"][g] = skew
    truth["n_components"][g] = 1

    h = labels == 1
    nh = int(h.sum())
    n_comp = rng.integers(2, c_max + 1, size=nh)
    x0, y0 = _disk(rng, nh, 0.7 * radius)
    offsets = rng.normal(0.0, 2.5 * s, size=(nh, 2, c_max))
    offsets[:, :, 0] = 0.0
    comp["x"][h] = x0[:, None] + offsets[:, 0]
    comp["y"][h] = y0[:, None] + offsets[:, 1]
    comp["angle"][h] = rng.uniform(-np.pi, np.pi, size=(nh, c_max))
    sizes = s * rng.uniform(0.7, 2.5, size=(nh, c_max))
    sizes[:, 0] = s * rng.uniform(1.5, 4.0, size=nh) * (1.0 + 0.2 * log_i[h])
    comp["head"][h] = comp["tail"][h] = sizes
    comp["width"][h] = sizes * rng.uniform(0.35, 1.0, size=(nh, c_max))
    weights = rng.uniform(0.2, 1.0, size=(nh, c_max)) * (np.arange(c_max) < n_comp[:, None])
    weights[:, 0] = rng.uniform(1.0, 3.0, size=nh)
    comp["weight"][h] = weights / weights.sum(axis=1, keepdims=True)
    truth["n_components"][h] = n_comp

    for key in ("x", "y"):
        truth[key] = comp[key][:, 0].copy()
    truth["psi"] = np.where(labels == 2, 0.0, _wrap_half(comp["angle"][:, 0]))
    truth["length"] = 0.5 * (comp["head"][:, 0] + comp["tail"][:, 0])
    truth["width"] = comp["width"][:, 0].copy()

    mu = labels == 2
    nm = int(mu.sum())
    ring = {k: np.zeros(n) for k in ("x", "y", "radius", "sigma", "amp", "phase")}
    ring["x"][mu], ring["y"][mu] = _disk(rng, nm, 0.6 * radius)
    ring["radius"][mu] = s * rng.uniform(8.0, 12.0, size=nm)
    ring["sigma"][mu] = s * rng.uniform(0.3, 0.6, size=nm)
    ring["amp"][mu] = rng.uniform(0.0, 0.8, size=nm)
    ring["phase"][mu] = rng.uniform(-np.pi, np.pi, size=nm)
    # about 20 - 40 photo-electrons per pixel width of ring circumference
    truth["intensity"][mu] = 2 * np.pi * ring["radius"][mu] / s * rng.uniform(20.0, 40.0, size=nm)
    truth["x"][mu], truth["y"][mu] = ring["x"][mu], ring["y"][mu]
    truth["ring_radius"][mu] = ring["radius"][mu]

    images = np.empty((n, camera.n_pixels), dtype=np.float32)
    for start in range(0, n, chunk_size):
        sl = slice(start, min(start + chunk_size, n))
        density = _render(camera, {k: v[sl] for k, v in comp.items()}, {k: v[sl] for k, v in ring.items()}, mu[sl])
        expected = truth["intensity"][sl, None] * density * camera.pix_area[None, :]
        charge = rng.poisson(expected) + rng.poisson(nsb, size=expected.shape) - nsb
        if noise > 0:
            charge = charge + rng.normal(0.0, noise, size=expected.shape)
        images[sl] = charge
    logger.debug("simulated %d events (%d gamma, %d hadron, %d muon)", n, ng, nh, nm)
    return images, labels, truth


def _render(
    camera: CameraGeometry, comp: dict[str, np.ndarray], ring: dict[str, np.ndarray], mu: np.ndarray
) -> np.ndarray:
    """Light density per unit area at the pixel centres, shape ``(n_chunk, n_pix)``."""
    px, py = camera.pix_x[None, :], camera.pix_y[None, :]
    density = np.zeros((mu.size, camera.n_pixels))
    for c in range(_MAX_COMPONENTS):
        w = comp["weight"][:, c]
        rows = np.flatnonzero(w > 0)
        if rows.size == 0:
            continue
        col = {k: v[rows, c][:, None] for k, v in comp.items()}
        dx, dy = px - col["x"], py - col["y"]
        cos_a, sin_a = np.cos(col["angle"]), np.sin(col["angle"])
        lon = dx * cos_a + dy * sin_a
        tra = -dx * sin_a + dy * cos_a
        sig_l = np.where(lon < 0, col["head"], col["tail"])
        norm = 2.0 / (np.sqrt(2 * np.pi) * (col["head"] + col["tail"])) / (np.sqrt(2 * np.pi) * col["width"])
        density[rows] += col["weight"] * norm * np.exp(-0.5 * ((lon / sig_l) ** 2 + (tra / col["width"]) ** 2))
    rows = np.flatnonzero(mu)
    if rows.size:
        col = {k: v[rows][:, None] for k, v in ring.items()}
        dx, dy = px - col["x"], py - col["y"]
        rho, phi = np.hypot(dx, dy), np.arctan2(dy, dx)
        radial = np.exp(-0.5 * ((rho - col["radius"]) / col["sigma"]) ** 2) / (np.sqrt(2 * np.pi) * col["sigma"])
        density[rows] += (1.0 + col["amp"] * np.cos(phi - col["phase"])) / (2 * np.pi * col["radius"]) * radial
    return density


def save_events(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    truth: dict[str, np.ndarray] | None = None,
    camera_name: str = "",
) -> Path:
    """Write events to a compressed ``.npz`` file atomically (temporary file, then rename).

    Args:
        path: Target file (``.npz`` is appended by NumPy if missing, so pass it).
        images: Shape ``(n_events, n_pix)``.
        labels: Shape ``(n_events,)``.
        truth: Optional dict of arrays of shape ``(n_events,)``, stored as ``truth_<key>``.
        camera_name: Stored alongside for reference.

    Returns:
        The path written.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 2:
        raise ValueError(f"images must have shape (n_events, n_pix), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must have shape ({images.shape[0]},), got {labels.shape}")
    arrays = {"images": images, "labels": labels, "camera_name": np.array(str(camera_name))}
    for key, value in (truth or {}).items():
        value = np.asarray(value)
        if value.shape[:1] != (images.shape[0],):
            raise ValueError(f"truth[{key!r}] must have {images.shape[0]} rows, got shape {value.shape}")
        arrays[f"truth_{key}"] = value
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_events(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Read events written by :func:`save_events`.

    Returns:
        ``(images (n_events, n_pix), labels (n_events,), truth)`` (the stored camera name is
        ``str(np.load(path)["camera_name"])``).
    """
    with np.load(path, allow_pickle=False) as data:
        truth = {key[len("truth_") :]: data[key] for key in data.files if key.startswith("truth_")}
        return data["images"], data["labels"], truth
