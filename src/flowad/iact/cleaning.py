"""Two-threshold tail-cuts image cleaning, batched over images.

Same rule as ``ctapipe.image.tailcuts_clean`` (ctapipe 0.28), applied to a whole batch with sparse
neighbour-matrix products (one product per step for all images instead of one per image):

- *picture* pixels: ``image >= picture_thresh`` (and, unless ``keep_isolated_pixels``, at least
  ``min_number_picture_neighbors`` neighbours that are also above the picture threshold);
- a pixel is kept when it is above ``boundary_thresh`` and has a picture neighbour, or when it is a
  picture pixel that has a neighbour above ``boundary_thresh`` (with ``keep_isolated_pixels=True``
  every picture pixel is kept).

Reference: the two-level "picture/boundary" cleaning of the Whipple analyses, e.g. P. T. Reynolds et
al. 1993, ApJ 404, 206; ctapipe, https://github.com/cta-observatory/ctapipe.
"""

from __future__ import annotations

import numpy as np

from flowad.iact.camera import CameraGeometry

__all__ = ["tailcuts_clean"]


def _threshold(value: float | np.ndarray, name: str, n_pix: int) -> float | np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        if not np.isfinite(arr):
            raise ValueError(f"{name} must be finite, got {value!r}")
        return value
    if arr.shape != (n_pix,):
        raise ValueError(f"{name} must be a scalar or have shape ({n_pix},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def tailcuts_clean(
    camera: CameraGeometry,
    images: np.ndarray,
    picture_thresh: float | np.ndarray = 7.0,
    boundary_thresh: float | np.ndarray = 5.0,
    keep_isolated_pixels: bool = False,
    min_number_picture_neighbors: int = 0,
) -> np.ndarray:
    """Tail-cuts cleaning masks for a batch of images (ctapipe's rule, see the module docstring).

    Args:
        camera: Camera geometry; its ``neighbors`` matrix defines adjacency.
        images: Pixel charges in photo-electrons, shape ``(n_images, n_pix)`` (or ``(n_pix,)`` for
            one image). Comparisons happen in the images' own dtype, like ctapipe.
        picture_thresh: Picture threshold, scalar or per pixel ``(n_pix,)``.
        boundary_thresh: Boundary threshold, scalar or per pixel ``(n_pix,)``.
        keep_isolated_pixels: Keep picture pixels that have no neighbour above the boundary threshold.
        min_number_picture_neighbors: A picture pixel needs at least this many picture neighbours
            (ignored when ``keep_isolated_pixels`` is True).

    Returns:
        Boolean masks of the kept pixels, shape ``(n_images, n_pix)`` (``(n_pix,)`` for 1-D input).
    """
    arr = np.asarray(images)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"images must be numeric, got dtype {arr.dtype}")
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    n_pix = camera.n_pixels
    if arr.ndim != 2 or arr.shape[1] != n_pix:
        raise ValueError(f"images must have shape (n_images, {n_pix}), got {np.shape(images)}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("images must be finite (no NaN or inf)")
    picture_thresh = _threshold(picture_thresh, "picture_thresh", n_pix)
    boundary_thresh = _threshold(boundary_thresh, "boundary_thresh", n_pix)
    if int(min_number_picture_neighbors) != min_number_picture_neighbors or min_number_picture_neighbors < 0:
        raise ValueError(
            f"min_number_picture_neighbors must be a non-negative integer, got {min_number_picture_neighbors!r}"
        )

    nb = camera.neighbors.astype(np.uint8)
    n_images = arr.shape[0]

    def neighbour_count(mask: np.ndarray) -> np.ndarray:
        # number of neighbours j of pixel i with mask[:, j] True -> (n_images, n_pix); the sparse
        # product runs on a C-contiguous (n_pix, n_images) uint8 copy, which is several times faster
        if n_images == 0:
            return np.zeros(mask.shape, dtype=np.uint8)
        return (nb @ np.ascontiguousarray(mask.T).view(np.uint8)).T

    above_picture = arr >= picture_thresh
    if keep_isolated_pixels or min_number_picture_neighbors == 0:
        in_picture = above_picture
    else:
        in_picture = above_picture & (neighbour_count(above_picture) >= min_number_picture_neighbors)
    above_boundary = arr >= boundary_thresh
    has_picture_neighbour = neighbour_count(in_picture) > 0
    if keep_isolated_pixels:
        mask = (above_boundary & has_picture_neighbour) | in_picture
    else:
        has_boundary_neighbour = neighbour_count(above_boundary) > 0
        mask = (above_boundary & has_picture_neighbour) | (in_picture & has_boundary_neighbour)
    return mask[0] if single else mask
