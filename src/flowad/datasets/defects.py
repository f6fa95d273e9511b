"""Small synthetic defects pasted into images, each with its pixel mask.

Every generator has the signature ``f(image, rng, **options) -> (defected, mask)``:

- ``image``: shape ``(H, W)`` (gray) or ``(H, W, 3)`` (RGB); uint8 (or any integer type: black and
  white are the type's range) or float (black 0.0, white 1.0). It is never modified.
- ``rng``: a :class:`numpy.random.Generator` (an int or None is turned into one).
- ``defected``: same shape and dtype as ``image``.
- ``mask``: shape ``(H, W)`` bool, the region the defect was painted or pasted into. Every pixel that
  differs from ``image`` is inside it; a pixel inside it may by coincidence keep its value (a black
  square on a black pixel, a blurred flat area, a pasted patch equal to the original there).

Sizes are given as an int or an inclusive ``(low, high)`` range of pixels, drawn uniformly.
The generators use NumPy, SciPy and scikit-image (imported on first use).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

__all__ = ["DEFECTS", "apply_defect", "blob", "scratch", "size_range", "square", "texture_patch"]

_COLORS = ("random", "black", "white", "contrast")


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)):
        raise ValueError(f"image must have shape (H, W) or (H, W, 3), got {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must not be empty, got shape {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"image must have an integer or float dtype, got {image.dtype}")
    return image


def size_range(value, name: str) -> tuple[int, int]:
    """An int or an inclusive ``(low, high)`` pair of positive ints, or a ValueError naming ``name``."""
    if isinstance(value, int | np.integer):
        value = (int(value), int(value))
    try:
        low, high = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a (low, high) pair, got {value!r}") from None
    if low < 1 or high < low:
        raise ValueError(f"{name} must satisfy 1 <= low <= high, got {value!r}")
    return low, high


def _draw(rng: np.random.Generator, value, name: str, cap: int | None = None) -> int:
    low, high = size_range(value, name)
    n = int(rng.integers(low, high + 1))
    return min(n, cap) if cap is not None else n


def _limits(image: np.ndarray) -> tuple[float, float]:
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        return float(info.min), float(info.max)
    return 0.0, 1.0


def _value(image: np.ndarray, region: np.ndarray, color: str, rng: np.random.Generator) -> float:
    if color not in _COLORS:
        raise ValueError(f"color must be one of {_COLORS}, got {color!r}")
    black, white = _limits(image)
    if color == "random":
        color = "black" if rng.random() < 0.5 else "white"
    elif color == "contrast":
        mean = float(image[region].mean())
        color = "black" if mean - black > white - mean else "white"
    return black if color == "black" else white


def _paint(image: np.ndarray, region: np.ndarray, value) -> tuple[np.ndarray, np.ndarray]:
    out = image.copy()
    out[region] = value
    return out, region


def _ellipse(shape: tuple[int, int], rng: np.random.Generator, size, name: str) -> np.ndarray:
    """A randomly rotated filled ellipse with diameters drawn from ``size``, centred inside the image."""
    from skimage.draw import ellipse

    h, w = shape
    d_r = _draw(rng, size, name, cap=h)
    d_c = _draw(rng, size, name, cap=w)
    r_radius, c_radius = max(d_r / 2, 0.5), max(d_c / 2, 0.5)
    reach = max(r_radius, c_radius)
    r = rng.uniform(min(reach, h / 2), max(h - reach, h / 2))
    c = rng.uniform(min(reach, w / 2), max(w - reach, w / 2))
    rr, cc = ellipse(r, c, r_radius, c_radius, shape=shape, rotation=rng.uniform(-np.pi, np.pi))
    region = np.zeros(shape, bool)
    region[rr, cc] = True
    if not region.any():  # a tiny ellipse between pixel centres
        region[min(int(r), h - 1), min(int(c), w - 1)] = True
    return region


def square(
    image: np.ndarray,
    rng: np.random.Generator | int | None,
    size: int | tuple[int, int] = (2, 8),
    color: str = "random",
) -> tuple[np.ndarray, np.ndarray]:
    """A filled black or white square of side ``size`` at a random place inside the image.

    Args:
        image: Shape ``(H, W)`` or ``(H, W, 3)``.
        rng: Random generator.
        size: Side in pixels, an int or an inclusive range (capped at the image size).
        color: ``"black"``, ``"white"``, ``"random"`` (either, equally likely) or ``"contrast"``
            (the one farther from the mean of the covered pixels).

    Returns:
        ``(defected, mask)``: shapes ``image.shape`` and ``(H, W)``.
    """
    image = _check_image(image)
    rng = np.random.default_rng(rng)
    h, w = image.shape[:2]
    side = _draw(rng, size, "size", cap=min(h, w))
    r, c = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    region = np.zeros((h, w), bool)
    region[r : r + side, c : c + side] = True
    return _paint(image, region, _value(image, region, color, rng))


def scratch(
    image: np.ndarray,
    rng: np.random.Generator | int | None,
    length: int | tuple[int, int] = (10, 60),
    width: int | tuple[int, int] = (1, 2),
    color: str = "random",
) -> tuple[np.ndarray, np.ndarray]:
    """A thin straight dark or bright line at a random angle, placed to fit inside the image
    (clipped only when it is longer than the image allows).

    Args:
        image: Shape ``(H, W)`` or ``(H, W, 3)``.
        rng: Random generator.
        length: Length in pixels, an int or an inclusive range.
        width: Thickness in pixels (the one-pixel line dilated by a ``width x width`` square).
        color: As for :func:`square`.

    Returns:
        ``(defected, mask)``: shapes ``image.shape`` and ``(H, W)``.
    """
    from skimage.draw import line

    image = _check_image(image)
    rng = np.random.default_rng(rng)
    h, w = image.shape[:2]
    n = _draw(rng, length, "length")
    thickness = _draw(rng, width, "width")
    angle = rng.uniform(0, np.pi)
    dr, dc = (n - 1) * np.sin(angle), (n - 1) * np.cos(angle)
    # start so that the whole line fits where it can (a longer line is clipped)
    r_lo, r_hi = max(0.0, -dr), h - 1 - max(0.0, dr)
    c_lo, c_hi = max(0.0, -dc), w - 1 - max(0.0, dc)
    r0 = rng.uniform(r_lo, r_hi) if r_lo <= r_hi else rng.uniform(0, h - 1)
    c0 = rng.uniform(c_lo, c_hi) if c_lo <= c_hi else rng.uniform(0, w - 1)
    r1, c1 = r0 + dr, c0 + dc
    rr, cc = line(int(round(r0)), int(round(c0)), int(round(r1)), int(round(c1)))
    inside = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
    region = np.zeros((h, w), bool)
    region[rr[inside], cc[inside]] = True
    if thickness > 1:
        region = ndimage.binary_dilation(region, structure=np.ones((thickness, thickness), bool))
    return _paint(image, region, _value(image, region, color, rng))


def texture_patch(
    image: np.ndarray,
    rng: np.random.Generator | int | None,
    source: np.ndarray,
    size: int | tuple[int, int] = (16, 64),
    shape: str = "random",
) -> tuple[np.ndarray, np.ndarray]:
    """A patch cut from another image (a different texture) pasted in, in a rectangle or an ellipse.

    Args:
        image: Shape ``(H, W)`` or ``(H, W, 3)``.
        rng: Random generator.
        source: Shape ``(H2, W2)`` or ``(H2, W2, 3)``: where the patch is cut from (converted to
            the gray/RGB form and dtype of ``image``; integer sources are taken at face value).
        size: Height and width of the patch (drawn independently), an int or an inclusive range,
            capped at the sizes of both images.
        shape: ``"rect"``, ``"ellipse"`` or ``"random"``.

    Returns:
        ``(defected, mask)``: shapes ``image.shape`` and ``(H, W)``.
    """
    image = _check_image(image)
    try:
        source = _check_image(source)
    except ValueError as err:
        raise ValueError(f"source: {err}") from None
    if shape not in ("random", "rect", "ellipse"):
        raise ValueError(f"shape must be 'random', 'rect' or 'ellipse', got {shape!r}")
    rng = np.random.default_rng(rng)
    if image.ndim == 2 and source.ndim == 3:
        source = source.mean(axis=-1)
    elif image.ndim == 3 and source.ndim == 2:
        source = np.repeat(source[..., None], 3, axis=-1)
    lo, hi = _limits(image)
    source = np.clip(np.rint(source) if np.issubdtype(image.dtype, np.integer) else source, lo, hi)
    source = source.astype(image.dtype)
    h, w = image.shape[:2]
    ph = _draw(rng, size, "size", cap=min(h, source.shape[0]))
    pw = _draw(rng, size, "size", cap=min(w, source.shape[1]))
    sr, sc = int(rng.integers(0, source.shape[0] - ph + 1)), int(rng.integers(0, source.shape[1] - pw + 1))
    r, c = int(rng.integers(0, h - ph + 1)), int(rng.integers(0, w - pw + 1))
    if shape == "random":
        shape = "rect" if rng.random() < 0.5 else "ellipse"
    local = np.ones((ph, pw), bool)
    if shape == "ellipse":
        from skimage.draw import ellipse

        local[:] = False
        rr, cc = ellipse((ph - 1) / 2, (pw - 1) / 2, max(ph / 2, 0.5), max(pw / 2, 0.5), shape=(ph, pw))
        local[rr, cc] = True
    region = np.zeros((h, w), bool)
    region[r : r + ph, c : c + pw] = local
    out = image.copy()
    out[region] = source[sr : sr + ph, sc : sc + pw][local]
    return out, region


def blob(
    image: np.ndarray,
    rng: np.random.Generator | int | None,
    size: int | tuple[int, int] = (10, 40),
    mode: str = "random",
    sigma: float = 3.0,
    amount: float = 0.25,
) -> tuple[np.ndarray, np.ndarray]:
    """An elliptic region (random diameters and rotation) blurred, brightened or darkened.

    Args:
        image: Shape ``(H, W)`` or ``(H, W, 3)``.
        rng: Random generator.
        size: The two diameters of the ellipse in pixels, each an int or an inclusive range.
        mode: ``"blur"`` (Gaussian filter of standard deviation ``sigma``), ``"brighten"`` or
            ``"darken"`` (by ``amount`` of the value range, clipped), or ``"random"`` (any of the three).
        sigma: Blur strength in pixels, > 0.
        amount: Brightness shift as a share of the value range (255 for uint8), in (0, 1].

    Returns:
        ``(defected, mask)``: shapes ``image.shape`` and ``(H, W)``.
    """
    image = _check_image(image)
    modes = ("blur", "brighten", "darken")
    if mode not in (*modes, "random"):
        raise ValueError(f"mode must be one of {(*modes, 'random')}, got {mode!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma!r}")
    if not 0 < amount <= 1:
        raise ValueError(f"amount must be in (0, 1], got {amount!r}")
    rng = np.random.default_rng(rng)
    region = _ellipse(image.shape[:2], rng, size, "size")
    if mode == "random":
        mode = modes[int(rng.integers(len(modes)))]
    lo, hi = _limits(image)
    values = image.astype(np.float64)
    if mode == "blur":
        sigmas = (sigma, sigma, 0) if image.ndim == 3 else sigma
        values = ndimage.gaussian_filter(values, sigma=sigmas, mode="reflect")
    else:
        values = values + (1 if mode == "brighten" else -1) * amount * (hi - lo)
    if np.issubdtype(image.dtype, np.integer):
        values = np.rint(values)
    values = np.clip(values, lo, hi).astype(image.dtype)
    out = image.copy()
    out[region] = values[region]
    return out, region


#: Defect generators by name.
DEFECTS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "square": square,
    "scratch": scratch,
    "texture": texture_patch,
    "blob": blob,
}


def apply_defect(
    image: np.ndarray, kind: str, rng: np.random.Generator | int | None, **kwargs
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the generator named ``kind`` (a key of :data:`DEFECTS`) with its keyword options.

    Returns:
        ``(defected, mask)``: shapes ``image.shape`` and ``(H, W)``.
    """
    if kind not in DEFECTS:
        raise ValueError(f"kind must be one of {sorted(DEFECTS)}, got {kind!r}")
    return DEFECTS[kind](image, rng, **kwargs)
