"""Data builders of the published-study reproductions (:mod:`flowad_studies`).

- :func:`contamination_mix`: a training set of one class with an exact number of images of another
  class mixed in (the contamination study of the Delft thesis on Glow for anomaly detection).
- :func:`with_squares`: small black or white squares painted into grey images, with exact masks.
- :func:`sinusoid_set`: sinusoid-pattern images of known spatial frequency and intensity (contrast).

Every builder takes a ``random_state`` (an int, None or a :class:`numpy.random.Generator`) and never
touches global RNGs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flowad.datasets.defects import size_range

__all__ = [
    "HIGH_FREQUENCIES",
    "INTENSITIES",
    "LOW_FREQUENCIES",
    "SinusoidSet",
    "contaminant_count",
    "contamination_mix",
    "sinusoid_set",
    "with_squares",
]

#: Spatial frequencies (cycles per image side) of the sinusoid set's two bands.
LOW_FREQUENCIES: tuple[int, ...] = (1, 2, 3, 4, 5)
HIGH_FREQUENCIES: tuple[int, ...] = (11, 12, 13, 14, 15)
#: Amplitudes of the sinusoid set, as shares of the half grey range (1.0: full black-to-white swing).
INTENSITIES: tuple[float, ...] = (0.25, 0.5, 1.0)


def _rng(random_state) -> np.random.Generator:
    return random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)


def _grey_uint8(images, name: str) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 grey images of shape (N, H, W), got {images.dtype} {images.shape}")
    if len(images) == 0:
        raise ValueError(f"{name} must not be empty")
    return images


def contaminant_count(share: float, n_total: int) -> int:
    """How many of ``n_total`` training images are contaminants at ``share``: ``round(share * n_total)``,
    but at least one when ``share > 0`` (a share too small for the set still means "some").

    Args:
        share: Share of contaminants in [0, 1).
        n_total: Size of the training set, at least 1.
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must be in [0, 1), got {share!r}")
    if n_total < 1:
        raise ValueError(f"n_total must be at least 1, got {n_total!r}")
    count = int(round(share * n_total))
    return max(count, 1) if share > 0 else 0


def contamination_mix(
    normal: np.ndarray,
    contaminant: np.ndarray,
    share: float,
    n_total: int,
    random_state: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A training set of ``n_total`` images, :func:`contaminant_count` of them drawn from ``contaminant``,
    the rest from ``normal``, without replacement, in random order.

    Args:
        normal: Pool of normal images, shape ``(N, ...)``.
        contaminant: Pool of contaminating images, shape ``(M, ...)`` (same image shape).
        share: Share of contaminants in [0, 1).
        n_total: Size of the mix.
        random_state: Seed or generator.

    Returns:
        ``(images, is_contaminant)``: shapes ``(n_total, ...)`` and ``(n_total,)`` bool; exactly
        ``contaminant_count(share, n_total)`` entries are True.

    Raises:
        ValueError: If a pool is too small for the mix or the image shapes differ.
    """
    normal, contaminant = np.asarray(normal), np.asarray(contaminant)
    if normal.shape[1:] != contaminant.shape[1:]:
        raise ValueError(f"contaminant images must have the shape of normal ones, got {contaminant.shape[1:]} "
                         f"and {normal.shape[1:]}")
    n_bad = contaminant_count(share, n_total)
    n_good = n_total - n_bad
    if n_good > len(normal):
        raise ValueError(f"normal holds {len(normal)} images, fewer than the {n_good} the mix needs")
    if n_bad > len(contaminant):
        raise ValueError(f"contaminant holds {len(contaminant)} images, fewer than the {n_bad} the mix needs")
    rng = _rng(random_state)
    images = np.concatenate([normal[rng.choice(len(normal), n_good, replace=False)],
                             contaminant[rng.choice(len(contaminant), n_bad, replace=False)]])
    flags = np.r_[np.zeros(n_good, bool), np.ones(n_bad, bool)]
    order = rng.permutation(n_total)
    return images[order], flags[order]


def with_squares(
    images: np.ndarray,
    colors: np.ndarray | str = "random",
    size: int | tuple[int, int] = (2, 4),
    random_state: int | np.random.Generator | None = 0,
    stroke_threshold: int = 128,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One filled square per image: black squares centred on a stroke pixel (value >=
    ``stroke_threshold``), white ones centred on a background pixel (value 0), so that each one
    changes the image (a black square on black background would be no defect at all).

    Args:
        images: ``(N, H, W)`` uint8 grey images (MNIST-like: bright strokes on black).
        colors: ``"black"``, ``"white"``, ``"random"`` (each with probability 1/2), or an array of
            ``N`` strings ``"black"``/``"white"``.
        size: Side in pixels, an int or an inclusive ``(low, high)`` range.
        random_state: Seed or generator.
        stroke_threshold: Least value of a stroke pixel.

    Returns:
        ``(defected, masks, colors)``: shapes ``(N, H, W)`` uint8, ``(N, H, W)`` bool (exactly the
        square, every pixel inside set to 0 or 255, every pixel outside unchanged) and ``(N,)``
        strings. An image without a pixel of the wanted kind gets its square at a random place.
    """
    images = _grey_uint8(images, "images")
    n, h, w = images.shape
    low, high = size_range(size, "size")
    if high > min(h, w):
        raise ValueError(f"size must fit the images ({h}x{w}), got {size!r}")
    rng = _rng(random_state)
    if isinstance(colors, str):
        if colors not in ("black", "white", "random"):
            raise ValueError(f"colors must be 'black', 'white', 'random' or an array of them, got {colors!r}")
        colors = (np.where(rng.random(n) < 0.5, "black", "white") if colors == "random"
                  else np.full(n, colors))
    colors = np.asarray(colors).astype(str)
    if colors.shape != (n,) or not np.isin(colors, ("black", "white")).all():
        raise ValueError(f"colors must hold {n} entries 'black' or 'white'")
    out, masks = images.copy(), np.zeros((n, h, w), bool)
    for i in range(n):
        side = int(rng.integers(low, high + 1))
        wanted = images[i] >= stroke_threshold if colors[i] == "black" else images[i] == 0
        rows, cols = np.nonzero(wanted)
        if len(rows):
            pick = int(rng.integers(len(rows)))
            r, c = rows[pick] - side // 2, cols[pick] - side // 2
        else:
            r, c = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        r, c = int(np.clip(r, 0, h - side)), int(np.clip(c, 0, w - side))
        masks[i, r : r + side, c : c + side] = True
        out[i][masks[i]] = 0 if colors[i] == "black" else 255
    return out, masks, colors


@dataclass
class SinusoidSet:
    """Sinusoid-pattern images and what they were made of.

    Attributes:
        images: ``(N, S, S)`` uint8.
        frequency: ``(N,)`` int, cycles per image side.
        intensity: ``(N,)`` float, amplitude as a share of the half grey range.
        vertical: ``(N,)`` bool, stripes vary along rows (True) or along columns (False).
    """

    images: np.ndarray
    frequency: np.ndarray
    intensity: np.ndarray
    vertical: np.ndarray


def sinusoid_set(
    n: int,
    frequencies: tuple[int, ...] = LOW_FREQUENCIES,
    intensities: tuple[float, ...] = INTENSITIES,
    size: int = 32,
    random_state: int | np.random.Generator | None = 0,
) -> SinusoidSet:
    """Images ``128 + 127 * a * sin(2 pi f t / size + phase)`` along rows or columns (random), rounded
    to uint8: ``f`` whole cycles per image side, amplitude ``a``, a uniform random phase.

    Every (frequency, intensity) pair occurs equally often (``n`` a multiple of their number gives
    exact balance; otherwise the first pairs get one image more), in random order.

    Args:
        n: Number of images, at least 1.
        frequencies: Whole cycles per side, each in ``[1, size // 2)`` (below Nyquist).
        intensities: Amplitudes in (0, 1].
        size: Image side ``S``.
        random_state: Seed or generator.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    if size < 4:
        raise ValueError(f"size must be at least 4, got {size!r}")
    if not frequencies or any(int(f) != f or not 1 <= f < size // 2 for f in frequencies):
        raise ValueError(f"frequencies must be whole numbers in [1, {size // 2}), got {frequencies!r}")
    if not intensities or any(not 0 < a <= 1 for a in intensities):
        raise ValueError(f"intensities must lie in (0, 1], got {intensities!r}")
    rng = _rng(random_state)
    pairs = [(int(f), float(a)) for f in frequencies for a in intensities]
    which = rng.permutation(np.arange(n) % len(pairs))
    frequency = np.array([pairs[k][0] for k in which])
    intensity = np.array([pairs[k][1] for k in which])
    vertical = rng.random(n) < 0.5
    phase = rng.uniform(0, 2 * np.pi, n)
    t = np.arange(size)
    wave = np.sin(2 * np.pi * frequency[:, None] * t[None, :] / size + phase[:, None])  # (n, S)
    values = 128 + 127 * intensity[:, None] * wave
    images = np.where(vertical[:, None, None], values[:, :, None], values[:, None, :])
    images = np.broadcast_to(images, (n, size, size))
    return SinusoidSet(np.rint(images).astype(np.uint8), frequency, intensity, vertical)
