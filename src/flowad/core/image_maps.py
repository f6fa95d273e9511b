"""Turning per-patch or per-position scores into per-pixel maps; images as a backbone sees them."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["aggregate_map_tensor", "backbone_input", "extract_patches", "gaussian_smooth", "padding_for_patches",
           "patch_average_map", "upsample"]


def padding_for_patches(size: int, patch: int, stride: int) -> int:
    """Extra pixels at the end of a side of ``size`` so that patches of ``patch`` pixels at
    ``stride`` cover every pixel."""
    if size <= patch:
        return patch - size
    return (-(size - patch)) % stride


def extract_patches(x: Tensor, patch: int, stride: int) -> tuple[Tensor, tuple[int, int]]:
    """All ``patch`` x ``patch`` patches at ``stride`` of images ``(N, C, H, W)`` (reflect-padded at
    the bottom and right so that every pixel is covered).

    Returns:
        Patches ``(N * L, C, patch, patch)`` in image-major order, and the padded size ``(H', W')``.
    """
    n, c, h, w = x.shape
    ph, pw = padding_for_patches(h, patch, stride), padding_for_patches(w, patch, stride)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    cols = F.unfold(x, patch, stride=stride)  # (N, C*p*p, L)
    patches = cols.transpose(1, 2).reshape(-1, c, patch, patch)
    return patches, (h + ph, w + pw)


def patch_average_map(values: Tensor, n: int, padded: tuple[int, int], size: tuple[int, int],
                      patch: int, stride: int) -> Tensor:
    """Per-pixel mean of the values of every patch that covers the pixel.

    Args:
        values: One value per patch, ``(N * L,)`` in the order of :func:`extract_patches`.
        n: ``N``.
        padded: Padded image size from :func:`extract_patches`.
        size: Original ``(H, W)``; the map is cropped to it.
        patch, stride: As in :func:`extract_patches`.

    Returns:
        Maps ``(N, H, W)``.
    """
    per_image = values.reshape(n, 1, -1)
    spread = per_image.expand(n, patch * patch, per_image.shape[-1])
    total = F.fold(spread, padded, patch, stride=stride)
    count = F.fold(torch.ones_like(spread[:1]), padded, patch, stride=stride)
    return (total / count)[:, 0, : size[0], : size[1]]


def upsample(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of maps ``(N, h, w)`` to ``(N, H, W)``."""
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def gaussian_smooth(maps: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of maps ``(N, H, W)`` with standard deviation ``sigma`` pixels (0: unchanged)."""
    if sigma <= 0:
        return maps
    radius = max(1, int(math.ceil(3 * sigma)))
    grid = torch.arange(-radius, radius + 1, dtype=maps.dtype, device=maps.device)
    kernel = torch.exp(-0.5 * (grid / sigma) ** 2)
    kernel = kernel / kernel.sum()
    x = maps[:, None]
    pad_mode = "reflect" if min(maps.shape[1:]) > radius else "replicate"
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=pad_mode), kernel.view(1, 1, 1, -1))
    x = F.conv2d(F.pad(x, (0, 0, radius, radius), mode=pad_mode), kernel.view(1, 1, -1, 1))
    return x[:, 0]


def backbone_input(x: Tensor, input_size: int | None, margin: int) -> Tensor:
    """Images as the backbone sees them: ``(N, C, H, W)`` -> ``(N, C, H' + 2m, W' + 2m)``.

    Args:
        x: Images in [0, 1].
        input_size: Shorter side after a bilinear resize (aspect ratio kept); None keeps the size.
        margin: Reflect padding ``m`` added on every side after the resize, in pixels.
    """
    if input_size is not None:
        h, w = x.shape[2], x.shape[3]
        scale = input_size / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        if size != (h, w):
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    if margin:
        if margin >= min(x.shape[2], x.shape[3]):
            raise ValueError(f"reflect_margin={margin} must be smaller than the resized image's sides "
                             f"{tuple(x.shape[2:])}; lower reflect_margin or raise input_size")
        x = F.pad(x, (margin, margin, margin, margin), mode="reflect")
    return x


def aggregate_map_tensor(maps: Tensor, how: str = "max") -> Tensor:
    """One anomaly value per map inside a torch graph: ``(N, H, W) -> (N,)``, the maximum
    (``"max"``) or the mean of the top 1% of pixels (``"top1_mean"``)."""
    flat = maps.flatten(1)
    if how == "max":
        return flat.amax(1)
    k = max(1, int(math.ceil(0.01 * flat.shape[1])))
    return torch.topk(flat, k, dim=1).values.mean(1)
