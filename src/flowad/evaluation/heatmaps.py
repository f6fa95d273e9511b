"""Overlay PNGs for inspectors: the image, its heatmap over it, and the ground-truth mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["overlay", "write_overlays"]


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    return np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image


def overlay(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None, low: float, high: float) -> np.ndarray:
    """One strip ``(H, 3W, 3)`` uint8: the image, the heatmap (scaled from ``low`` to ``high``) blended
    over it, and the mask (black if None)."""
    from matplotlib import colormaps

    base = _rgb(image).astype(np.float32)
    scaled = np.clip((heatmap - low) / max(high - low, 1e-12), 0, 1)
    colour = colormaps["inferno"](scaled)[..., :3] * 255
    blended = 0.45 * base + 0.55 * colour
    shown = np.zeros_like(base) if mask is None else np.repeat(mask[..., None].astype(np.float32) * 255, 3, axis=2)
    return np.concatenate([base, blended, shown], axis=1).astype(np.uint8)


def write_overlays(folder: str | Path, images: np.ndarray, maps: np.ndarray, masks: np.ndarray | None,
                   names: list[str]) -> list[Path]:
    """Write ``<name>.png`` strips for every image into ``folder`` (created); one colour scale for all:
    from the 1st to the 99.9th percentile of all map values.

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
    low, high = np.percentile(maps, [1, 99.9])
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}.png"
        Image.fromarray(overlay(images[i], maps[i], None if masks is None else masks[i], low, high)).save(path)
        paths.append(path)
    return paths
