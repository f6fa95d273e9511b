"""Patches cut from and pasted into images: synthetic anomalies with exact pixel masks.

Flow-made anomalies paste patches drawn by :class:`~flowad.synth.sampler.PatchSampler` from its
low-likelihood region into normal images (the idea of learning from pasted out-of-distribution
patches: Li et al., "CutPaste: Self-Supervised Learning for Anomaly Detection and Localization",
arXiv:2104.04015; here the patches come from the density model of the normal patches itself).
For comparison, :func:`simple_anomalies` applies the hand-made defects of
:mod:`flowad.datasets.defects` (squares, scratches, foreign texture patches, blobs).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np

from flowad.datasets.defects import DEFECTS, size_range
from flowad.datasets.image_folder import ImageSet
from flowad.synth.patches import check_images, resize_patches, to_uint8

if TYPE_CHECKING:  # pragma: no cover
    from flowad.synth.sampler import PatchSampler

__all__ = [
    "BLENDS",
    "FLOW_KINDS",
    "SIMPLE_GENERATORS",
    "feather",
    "paste_patches",
    "simple_anomalies",
    "synthetic_anomalies",
]

#: Blending of pasted patches.
BLENDS = ("none", "soft")

#: Flow-based anomaly kinds: name -> (``PatchSampler.sample`` method, rejection band name or None).
#: The images get the kind ``"flow_<name>"``.
FLOW_KINDS: dict[str, tuple[str, str | None]] = {
    "temperature": ("temperature", None),
    "tail": ("tail", None),
    "boundary": ("rejection", "boundary"),
    "far": ("rejection", "far"),
}

#: The hand-made defect generators of :mod:`flowad.datasets.defects` by kind (reused, not copied).
SIMPLE_GENERATORS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = dict(DEFECTS)

_MAX_TRIES = 50


def _count(n, name: str = "n") -> int:
    if not isinstance(n, Integral) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def feather(side: int) -> np.ndarray:
    """Soft-paste alpha of a ``side x side`` square, shape ``(side, side)`` in (0, 1].

    Alpha rises linearly from the border over a quarter of the side:
    ``alpha = min(1, d / (side / 4))`` with ``d`` the distance of the pixel centre to the nearest edge,
    so ``alpha > 0.5`` exactly on the central square of pixels farther than ``side / 8`` from the edge.
    """
    d = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5)
    ramp = np.minimum(1.0, d / (side / 4))
    return np.minimum(ramp[:, None], ramp[None, :])


def paste_patches(
    images,
    patches,
    rng: np.random.Generator | int | None,
    size=(8, 48),
    blend: str = "none",
    n_per_image=(1, 1),
) -> tuple[np.ndarray, np.ndarray]:
    """Paste square patches, resized to a random side, at random places into images.

    Patches are used in order (``patches[0]`` first), cycling when there are fewer patches than pastes.

    Masks: with ``blend="none"`` the mask is the union of the pasted squares; every changed pixel is
    inside it, and a pixel inside it may keep its value by coincidence (the resized patch equals the
    image there). With ``blend="soft"`` each patch is mixed in with the feathered alpha of
    :func:`feather`, ``out = alpha * patch + (1 - alpha) * image``, and the mask is where
    ``alpha > 0.5`` (the patch dominates); pixels near the square's edge (``alpha <= 0.5``) may
    change a little while staying outside the mask.

    Args:
        images: Shape ``(N, H, W)`` or ``(N, H, W, 3)``, uint8; never modified.
        patches: Shape ``(M, p, p)`` or ``(M, p, p, 3)``, uint8, the same channels as ``images``.
        rng: Random generator (or seed) for sides, places and counts.
        size: Side of each pasted square, an int or an inclusive ``(low, high)`` range (capped at ``min(H, W)``).
        blend: One of :data:`BLENDS`.
        n_per_image: Pastes per image, an int or an inclusive ``(low, high)`` range, >= 1.

    Returns:
        ``(out_images, masks)``: shapes ``images.shape`` uint8 and ``(N, H, W)`` bool.
    """
    images = check_images(images)
    patches = np.asarray(patches)
    if patches.dtype != np.uint8 or patches.ndim != images.ndim or patches.shape[1] != patches.shape[2] \
            or patches.shape[3:] != images.shape[3:] or len(patches) == 0:
        raise ValueError(f"patches must be uint8 of shape (M, p, p{', 3' if images.ndim == 4 else ''}) with M >= 1 "
                         f"like images {images.shape}, got {patches.dtype} {patches.shape}")  # fmt: skip
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    low, high = size_range(size, "size")
    n_low, n_high = size_range(n_per_image, "n_per_image")
    rng = np.random.default_rng(rng)
    n, h, w = images.shape[:3]
    out, masks = images.copy(), np.zeros((n, h, w), bool)
    used = 0
    for i in range(n):
        for _ in range(int(rng.integers(n_low, n_high + 1))):
            patch = patches[used % len(patches)]
            used += 1
            side = min(int(rng.integers(low, high + 1)), h, w)
            r, c = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            resized = resize_patches(patch[None], side)[0]
            if blend == "none":
                out[i, r : r + side, c : c + side] = to_uint8(resized)
                masks[i, r : r + side, c : c + side] = True
                continue
            alpha = feather(side)
            a = alpha if images.ndim == 3 else alpha[..., None]
            under = out[i, r : r + side, c : c + side].astype(np.float64)
            out[i, r : r + side, c : c + side] = to_uint8(a * resized + (1 - a) * under)
            masks[i, r : r + side, c : c + side] |= alpha > 0.5
    return out, masks


def _names(n: int) -> list[str]:
    width = max(3, len(str(max(n - 1, 0))))
    return [f"{i:0{width}d}" for i in range(n)]


def _base_images(images: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` images drawn from ``images``: without replacement when there are enough."""
    return images[rng.choice(len(images), n, replace=n > len(images))]


def synthetic_anomalies(
    images,
    sampler: PatchSampler,
    n: int,
    method: str = "temperature",
    rng: np.random.Generator | int | None = None,
    *,
    temperature: float | None = None,
    quantile: float = 0.99,
    max_clipped: float = 0.0,
    max_tries: int = 100,
    size=(8, 48),
    blend: str = "none",
    n_per_image=(1, 1),
) -> ImageSet:
    """Anomalous images made by pasting flow samples from the low-likelihood region into normal images.

    Args:
        images: Normal images ``(N, H, W[, 3])`` uint8; ``n`` of them are drawn (with replacement
            only when ``n > N``).
        sampler: A fitted :class:`~flowad.synth.sampler.PatchSampler` with the images' channels.
        n: Number of anomalous images, >= 0.
        method: A key of :data:`FLOW_KINDS`: ``"temperature"``, ``"tail"``, ``"boundary"`` or
            ``"far"`` (the last two: rejection sampling in the bands of ``sampler`` ``BANDS``).
        rng: Random generator or seed (patches, images, places).
        temperature: Passed to ``PatchSampler.sample``.
        quantile: Passed to ``PatchSampler.sample``.
        max_clipped: Passed to ``PatchSampler.sample``.
        max_tries: Passed to ``PatchSampler.sample``.
        size: Passed to :func:`paste_patches`.
        blend: Passed to :func:`paste_patches`.
        n_per_image: Passed to :func:`paste_patches`.

    Returns:
        An :class:`~flowad.datasets.image_folder.ImageSet` of ``n`` images, label 1, kind
        ``"flow_<method>"``, masks from :func:`paste_patches`.
    """
    images = check_images(images)
    if method not in FLOW_KINDS:
        raise ValueError(f"method must be one of {sorted(FLOW_KINDS)}, got {method!r}")
    n = _count(n)
    rng = np.random.default_rng(rng)
    sample_method, band = FLOW_KINDS[method]
    options: dict = {"temperature": temperature, "quantile": quantile, "max_clipped": max_clipped,
                     "max_tries": max_tries, "random_state": rng}  # fmt: skip
    if band is not None:
        options["band"] = band
    patches, _ = sampler.sample(n * size_range(n_per_image, "n_per_image")[1], sample_method, **options)
    if n == 0:
        return _empty(images)
    out, masks = paste_patches(_base_images(images, n, rng), patches, rng, size=size, blend=blend,
                               n_per_image=n_per_image)  # fmt: skip
    return ImageSet(out, np.ones(n, np.int64), masks, kinds=[f"flow_{method}"] * n, names=_names(n))


def _empty(images: np.ndarray) -> ImageSet:
    return ImageSet(images[:0], np.zeros(0, np.int64), kinds=[], names=[])


def _simple_options(kind: str, side: int, rng: np.random.Generator, sources: list[np.ndarray]) -> dict:
    """Default sizes of :mod:`flowad.datasets.textures`, scaled from 128-pixel images to ``side``."""
    scale = side / 128

    def scaled(low: int, high: int) -> tuple[int, int]:
        return max(1, round(low * scale)), max(1, round(high * scale))

    if kind == "square":
        return {"size": (5, 8)}
    if kind == "scratch":
        return {"length": scaled(10, 60), "width": (1, 2)}
    if kind == "blob":
        return {"size": scaled(10, 40)}
    return {"size": scaled(12, 40), "source": sources[int(rng.integers(len(sources)))]}


def simple_anomalies(images, kind: str, n: int, rng: np.random.Generator | int | None = None, **options) -> ImageSet:
    """Anomalous images made with a hand-made defect of :mod:`flowad.datasets.defects`, for comparison.

    Args:
        images: Normal images ``(N, H, W[, 3])`` uint8; ``n`` of them are drawn (with replacement
            only when ``n > N``).
        kind: A key of :data:`SIMPLE_GENERATORS` (``"square"``, ``"scratch"``, ``"texture"``, ``"blob"``).
        n: Number of anomalous images, >= 0.
        rng: Random generator or seed.
        **options: Passed to the generator instead of the defaults (sizes of
            :mod:`flowad.datasets.textures` scaled to the image side; for ``"texture"`` the source
            is one of scikit-image's textures: pass ``source=`` when the images are themselves one).

    Returns:
        ``n`` images, label 1, kind ``kind``; a defect that happens to change no pixel is drawn again.
    """
    images = check_images(images)
    if kind not in SIMPLE_GENERATORS:
        raise ValueError(f"kind must be one of {sorted(SIMPLE_GENERATORS)}, got {kind!r}")
    n = _count(n)
    rng = np.random.default_rng(rng)
    if n == 0:
        return _empty(images)
    sources = []
    if kind == "texture" and "source" not in options:
        from flowad.datasets.textures import TEXTURES, load_texture

        sources = [load_texture(t) for t in TEXTURES]
    base = _base_images(images, n, rng)
    out, masks = np.empty_like(base), np.zeros(base.shape[:3], bool)
    for i, clean in enumerate(base):
        for _ in range(_MAX_TRIES):
            kwargs = {**_simple_options(kind, min(clean.shape[:2]), rng, sources), **options}
            out[i], masks[i] = SIMPLE_GENERATORS[kind](clean, rng, **kwargs)
            if (out[i] != clean).any():
                break
    return ImageSet(out, np.ones(n, np.int64), masks, kinds=[kind] * n, names=_names(n))
