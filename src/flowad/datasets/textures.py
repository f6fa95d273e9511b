"""Texture anomaly sets in the spirit of MVTec AD's texture categories, built offline from
scikit-image's 512 x 512 grayscale textures with synthetic defects (:mod:`flowad.datasets.defects`).

Train and test crops come from disjoint horizontal bands of the texture image (top band for
training, bottom band for testing), so no test crop shares a pixel with a training crop. The test
band takes ``max(crop, test_fraction * 512)`` rows; the crop therefore has to fit in half the image
(at most 256). With crop 256 each band has 256 rows, so crops vary only horizontally (257
positions); random flips (``augment="flip"``, the default) add variety without turning the
texture's orientation, ``augment="dihedral"`` also rotates by multiples of 90 degrees.

Test defects (the kind becomes the folder name): ``square_small`` (black or white, side 2-4 px),
``square`` (side 5-8 px), ``scratch`` (length 10-60 px, width 1-2 px), ``texture`` (a patch of 12-40
px cut from one of the *other* textures) and ``blob`` (ellipse of diameter 10-40 px blurred,
brightened or darkened). Sizes are for crop 128; all but the squares scale with ``crop / 128``.
A defect that by chance changes no pixel is drawn again.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from flowad.datasets.defects import blob, scratch, square, texture_patch
from flowad.datasets.image_folder import ImageSet, write_image_folder

__all__ = ["AUGMENTS", "TEXTURES", "TEXTURE_DEFECTS", "load_texture", "make_texture_set", "write_texture_sets"]

#: Names of the scikit-image textures (``skimage.data.<name>()``, 512 x 512 uint8 gray).
TEXTURES = ("brick", "grass", "gravel")

#: Defect kinds of the test sets, in folder order.
TEXTURE_DEFECTS = ("square_small", "square", "scratch", "texture", "blob")

#: Crop augmentations: none, random horizontal/vertical flips, flips and 90-degree rotations.
AUGMENTS = ("none", "flip", "dihedral")

_MAX_TRIES = 50


def load_texture(texture: str) -> np.ndarray:
    """One scikit-image texture.

    Args:
        texture: One of :data:`TEXTURES`.

    Returns:
        Shape ``(512, 512)`` uint8.
    """
    if texture not in TEXTURES:
        raise ValueError(f"texture must be one of {TEXTURES}, got {texture!r}")
    from flowad.core.extras import require

    skimage = require("skimage.data", "images", "the texture sets")
    return np.ascontiguousarray(getattr(skimage, texture)(), dtype=np.uint8)


def _augment(crop: np.ndarray, augment: str, rng: np.random.Generator) -> np.ndarray:
    if augment == "none":
        return crop
    if augment == "dihedral":
        crop = np.rot90(crop, k=int(rng.integers(4)))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    if rng.random() < 0.5:
        crop = crop[::-1, :]
    return np.ascontiguousarray(crop)


def _crops(band: np.ndarray, n: int, crop: int, augment: str, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, crop, crop), np.uint8)
    for i in range(n):
        r = int(rng.integers(0, band.shape[0] - crop + 1))
        c = int(rng.integers(0, band.shape[1] - crop + 1))
        out[i] = _augment(band[r : r + crop, c : c + crop], augment, rng)
    return out


def _defect(kind: str, image: np.ndarray, rng: np.random.Generator, scale: float, sources: list[np.ndarray]):
    def scaled(low: int, high: int) -> tuple[int, int]:
        return max(1, round(low * scale)), max(1, round(high * scale))

    if kind == "square_small":
        return square(image, rng, size=(2, 4))
    if kind == "square":
        return square(image, rng, size=(5, 8))
    if kind == "scratch":
        return scratch(image, rng, length=scaled(10, 60), width=(1, 2))
    if kind == "texture":
        source = sources[int(rng.integers(len(sources)))]
        return texture_patch(image, rng, source=source, size=scaled(12, 40))
    if kind == "blob":
        return blob(image, rng, size=scaled(10, 40))
    raise ValueError(f"defects must be drawn from {TEXTURE_DEFECTS}, got {kind!r}")


def make_texture_set(
    texture: str,
    n_train: int = 200,
    n_test_good: int = 50,
    n_test_defect: int = 100,
    crop: int = 128,
    defects: tuple[str, ...] = TEXTURE_DEFECTS,
    augment: str = "flip",
    test_fraction: float = 0.4,
    random_state: int | None = 0,
) -> tuple[ImageSet, ImageSet]:
    """Random crops of a texture: normal training crops and a test set with synthetic defects.

    Args:
        texture: One of :data:`TEXTURES`.
        n_train: Number of (normal) training crops, >= 1.
        n_test_good: Number of normal test crops, >= 0.
        n_test_defect: Number of defective test crops, split as evenly as possible over
            ``defects`` (earlier kinds get the remainder), >= 0.
        crop: Side of the square crops in pixels, 8 to 256 (128 keeps CPU cost low).
        defects: Defect kinds, a non-empty subset of :data:`TEXTURE_DEFECTS`.
        augment: One of :data:`AUGMENTS`.
        test_fraction: Share of the image rows reserved for test crops (at least ``crop`` rows),
            in (0, 1).
        random_state: Seed.

    Returns:
        ``(train, test)``: ``train`` has ``n_train`` images ``(crop, crop)`` uint8, all ``"good"``;
        ``test`` has the normal crops first (kind ``"good"``), then each defect kind in order,
        with masks of the defect regions. Names are ``"000"``, ``"001"``, ... within each kind.
    """
    for name, value, low in (
        ("n_train", n_train, 1),
        ("n_test_good", n_test_good, 0),
        ("n_test_defect", n_test_defect, 0),
    ):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {augment!r}")
    defects = tuple(defects)
    if not defects or any(d not in TEXTURE_DEFECTS for d in defects) or len(set(defects)) != len(defects):
        raise ValueError(f"defects must be distinct kinds from {TEXTURE_DEFECTS}, got {defects!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    full = load_texture(texture)
    height = full.shape[0]
    if not isinstance(crop, int | np.integer) or not 8 <= crop <= height // 2:
        raise ValueError(
            f"crop must be an integer in [8, {height // 2}] (train and test bands each need crop rows), got {crop!r}"
        )
    test_rows = max(int(crop), math.ceil(test_fraction * height))
    if height - test_rows < crop:
        raise ValueError(
            f"test_fraction {test_fraction} leaves {height - test_rows} training rows, fewer than crop={crop}"
        )
    train_band, test_band = full[: height - test_rows], full[height - test_rows :]
    rng = np.random.default_rng(random_state)
    sources = [load_texture(t) for t in TEXTURES if t != texture]
    scale = crop / 128

    train = ImageSet(images=_crops(train_band, n_train, crop, augment, rng), labels=np.zeros(n_train, np.int64))
    images = [_crops(test_band, n_test_good, crop, augment, rng)]
    masks = [np.zeros((n_test_good, crop, crop), bool)]
    kinds, names = ["good"] * n_test_good, [f"{i:03d}" for i in range(n_test_good)]
    counts = [n_test_defect // len(defects) + (i < n_test_defect % len(defects)) for i in range(len(defects))]
    for kind, count in zip(defects, counts, strict=True):
        kind_images, kind_masks = np.empty((count, crop, crop), np.uint8), np.empty((count, crop, crop), bool)
        for i in range(count):
            for _ in range(_MAX_TRIES):
                clean = _crops(test_band, 1, crop, augment, rng)[0]
                out, mask = _defect(kind, clean, rng, scale, sources)
                if (out != clean).any():
                    break
            else:  # pragma: no cover - practically unreachable on these textures
                raise RuntimeError(f"could not draw a visible {kind!r} defect on {texture!r} in {_MAX_TRIES} tries")
            kind_images[i], kind_masks[i] = out, mask
        images.append(kind_images)
        masks.append(kind_masks)
        kinds += [kind] * count
        names += [f"{i:03d}" for i in range(count)]
    n_test = n_test_good + n_test_defect
    test = ImageSet(
        images=np.concatenate(images).reshape(n_test, crop, crop),
        labels=np.r_[np.zeros(n_test_good, np.int64), np.ones(n_test_defect, np.int64)],
        masks=np.concatenate(masks).reshape(n_test, crop, crop),
        kinds=kinds,
        names=names,
    )
    return train, test


def write_texture_sets(
    out: str | Path, textures: tuple[str, ...] = TEXTURES, overwrite: bool = False, **kwargs
) -> dict[str, Path]:
    """Build :func:`make_texture_set` for each texture and write it to ``out/<texture>/`` (MVTec AD layout).

    Args:
        out: Parent folder; each ``out/<texture>`` must be absent or empty unless ``overwrite``.
        textures: Names from :data:`TEXTURES`.
        overwrite: Passed to :func:`~flowad.datasets.image_folder.write_image_folder`.
        **kwargs: Passed to :func:`make_texture_set` (``n_train``, ``crop``, ``random_state``, ...).

    Returns:
        Texture name -> its folder.
    """
    textures = tuple(textures)
    if not textures:
        raise ValueError("textures must name at least one texture")
    for texture in textures:
        if texture not in TEXTURES:
            raise ValueError(f"textures must be drawn from {TEXTURES}, got {texture!r}")
    for texture in textures:
        folder = Path(out) / texture
        if folder.is_dir() and any(folder.iterdir()) and not overwrite:
            raise ValueError(f"out: {folder} exists and is not empty; pass overwrite=True to write into it")
    folders = {}
    for texture in textures:
        train, test = make_texture_set(texture, **kwargs)
        folders[texture] = write_image_folder(Path(out) / texture, train=train, test=test, overwrite=overwrite)
    return folders
