"""Overlay PNGs for inspectors: the image, its heatmap over it, and the ground-truth mask.

The loose PNGs of ``flowad image score --heatmaps``; the HTML page of the same command
(:mod:`flowad.evaluation.image_report`) is the main view and shares :func:`colour_range`.

Example:
    >>> import numpy as np
    >>> maps = np.linspace(0, 1, 2 * 8 * 8).reshape(2, 8, 8)
    >>> low, high = colour_range(maps)
    >>> overlay(np.zeros((8, 8), np.uint8), maps[0], None, low, high).shape
    (8, 24, 3)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["as_rgb", "colour_range", "overlay", "write_overlays"]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """An image ``(H, W)`` or ``(H, W, 3)``, uint8 or float in [0, 1], as uint8 RGB ``(H, W, 3)``."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def colour_range(maps: np.ndarray, max_values: int = 4_000_000) -> tuple[float, float]:
    """One colour scale for a set of maps ``(N, H, W)``: their 1st and 99.9th percentiles (taken
    on an even subsample of at most ``max_values`` values); ``high > low`` always."""
    flat = np.asarray(maps, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError("maps must hold at least one value")
    step = max(1, flat.size // max_values)
    low, high = (float(v) for v in np.percentile(flat[::step], [1, 99.9]))
    return low, high if high > low else low + max(abs(low) * 1e-6, 1e-12)


def overlay(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None, low: float, high: float) -> np.ndarray:
    """One strip ``(H, 3W, 3)`` uint8: the image, the heatmap (scaled from ``low`` to ``high``) blended
    over it, and the mask (black if None)."""
    from matplotlib import colormaps

    base = as_rgb(image).astype(np.float32)
    scaled = np.clip((heatmap - low) / max(high - low, 1e-12), 0, 1)
    colour = colormaps["inferno"](scaled)[..., :3] * 255
    blended = 0.45 * base + 0.55 * colour
    shown = np.zeros_like(base) if mask is None else np.repeat(mask[..., None].astype(np.float32) * 255, 3, axis=2)
    return np.concatenate([base, blended, shown], axis=1).astype(np.uint8)


def write_overlays(folder: str | Path, images: np.ndarray, maps: np.ndarray, masks: np.ndarray | None,
                   names: list[str]) -> list[Path]:
    """Write ``<name>.png`` strips for every image into ``folder`` (created); one colour scale for all
    (:func:`colour_range`).

    Args:
        folder: Output folder.
        images: ``(N, H, W)`` or ``(N, H, W, 3)``.
        maps: ``(N, H, W)`` anomaly maps.
        masks: ``(N, H, W)`` bool, or None.
        names: ``N`` file stems.
    """
    if len(images) != len(maps) or len(names) != len(maps):
        raise ValueError(f"images, maps and names must have the same length, got {len(images)}, {len(maps)}, "
                         f"{len(names)}")
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    low, high = colour_range(maps)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}.png"
        Image.fromarray(overlay(images[i], maps[i], None if masks is None else masks[i], low, high)).save(path)
        paths.append(path)
    return paths
