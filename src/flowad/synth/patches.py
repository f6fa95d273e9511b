"""Square patches cut from images and resized: the patches a sampler learns and a paste uses.

Shapes follow the images: ``(N, H, W)`` grey or ``(N, H, W, 3)`` colour, uint8.

Example:
    >>> import numpy as np
    >>> from flowad.synth.patches import random_patches
    >>> images = np.zeros((4, 32, 32), np.uint8)
    >>> random_patches(images, 5, 8, (8, 16), np.random.default_rng(0)).shape
    (5, 8, 8)
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from flowad.datasets.defects import size_range

__all__ = ["check_images", "random_patches", "resize_patches", "to_uint8"]


def check_images(images, name: str = "images") -> np.ndarray:
    """``images`` as uint8 ``(N, H, W)`` or ``(N, H, W, 3)`` with ``N >= 1``, or a ValueError naming ``name``."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got dtype {images.dtype}")
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
        raise ValueError(f"{name} must have shape (N, H, W) or (N, H, W, 3), got {images.shape}")
    if min(images.shape[:3]) < 1:
        raise ValueError(f"{name} must not be empty, got shape {images.shape}")
    return images


def resize_patches(patches: np.ndarray, size: int) -> np.ndarray:
    """Resize square patches: area averaging when shrinking, bilinear when enlarging.

    Args:
        patches: Shape ``(N, s, s)`` or ``(N, s, s, C)``, any real dtype.
        size: Output side in pixels.

    Returns:
        Shape ``(N, size, size[, C])`` float64 (not rounded).
    """
    gray = patches.ndim == 3
    x = torch.as_tensor(np.asarray(patches, dtype=np.float64))
    x = x[:, None] if gray else x.permute(0, 3, 1, 2)
    if x.shape[-1] != size:
        mode = {"mode": "area"} if size < x.shape[-1] else {"mode": "bilinear", "align_corners": False}
        x = F.interpolate(x, size=(size, size), **mode)
    x = x[:, 0] if gray else x.permute(0, 2, 3, 1)
    return x.numpy()


def to_uint8(values: np.ndarray) -> np.ndarray:
    """``values`` rounded and clipped to 0-255, as uint8 of the same shape."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def random_patches(images: np.ndarray, n: int, patch_size: int, region_size, rng: np.random.Generator) -> np.ndarray:
    """Square regions of random side and position, resized to ``patch_size``.

    Args:
        images: Shape ``(N, H, W)`` or ``(N, H, W, 3)``, uint8.
        n: Number of patches.
        patch_size: Output side ``p``.
        region_size: Inclusive ``(low, high)`` range of region sides (capped at ``min(H, W)``).
        rng: Source of the images, sides and positions.

    Returns:
        Shape ``(n, p, p)`` or ``(n, p, p, 3)``, uint8 (rounded).
    """
    images = check_images(images)
    low, high = size_range(region_size, "region_size")
    count, h, w = images.shape[:3]
    which = rng.integers(0, count, n)
    sides = np.minimum(rng.integers(low, high + 1, n), min(h, w))
    rows = (rng.random(n) * (h - sides + 1)).astype(np.int64)
    cols = (rng.random(n) * (w - sides + 1)).astype(np.int64)
    out = np.empty((n, patch_size, patch_size, *images.shape[3:]), np.uint8)
    for side in np.unique(sides):
        idx = np.flatnonzero(sides == side)
        crops = np.stack([images[which[i], rows[i] : rows[i] + side, cols[i] : cols[i] + side] for i in idx])
        out[idx] = to_uint8(resize_patches(crops, patch_size))
    return out
