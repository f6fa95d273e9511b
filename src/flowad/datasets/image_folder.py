"""Image anomaly sets on disk in the MVTec AD folder layout, and in memory as :class:`ImageSet`.

Layout (Bergmann et al., "MVTec AD -- A Comprehensive Real-World Dataset for Unsupervised Anomaly
Detection", CVPR 2019)::

    root/train/good/*.png                   normal training images
    root/test/good/*.png                    normal test images (label 0)
    root/test/<kind>/*.png                  anomalous test images (label 1), e.g. kind "scratch"
    root/ground_truth/<kind>/<stem>_mask.png   pixel masks of the anomalous test images (0 / 255)

Pillow (the ``images`` extra) is needed for reading and writing; it is imported on first use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "ImageSet", "load_image_folder", "write_image_folder"]

logger = logging.getLogger(__name__)

#: File suffixes read as images (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

_SPLITS = ("train", "test")


@dataclass
class ImageSet:
    """Images with image labels, pixel masks, defect kinds and names.

    Attributes:
        images: Shape ``(N, H, W)`` (grayscale) or ``(N, H, W, 3)`` (RGB), uint8.
        labels: Shape ``(N,)`` int, 1 = anomalous, 0 = normal.
        masks: Shape ``(N, H, W)`` bool, True on anomalous pixels; all False for normal images.
            ``None`` means all False.
        kinds: ``N`` folder names: ``"good"`` for normal images, the defect kind otherwise.
            ``None`` means ``"good"`` / ``"anomaly"`` from the labels.
        names: ``N`` file stems. ``None`` means ``"000"``, ``"001"``, ...
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None
    kinds: list[str] | None = field(default=None)
    names: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.dtype != np.uint8:
            raise ValueError(f"images must be uint8, got dtype {images.dtype}")
        if not (images.ndim == 3 or (images.ndim == 4 and images.shape[-1] == 3)):
            raise ValueError(f"images must have shape (N, H, W) or (N, H, W, 3), got {images.shape}")
        n, h, w = images.shape[:3]
        labels = np.asarray(self.labels)
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) like images, got {labels.shape}")
        if n and not np.isin(labels, (0, 1)).all():
            raise ValueError("labels must hold only 0 (normal) and 1 (anomalous)")
        labels = labels.astype(np.int64)
        masks = np.zeros((n, h, w), bool) if self.masks is None else np.asarray(self.masks)
        if masks.shape != (n, h, w):
            raise ValueError(f"masks must have shape {(n, h, w)}, got {masks.shape}")
        if masks.dtype != bool:
            if not np.isin(masks, (0, 1)).all():
                raise ValueError("masks must be boolean (or hold only 0 and 1)")
            masks = masks.astype(bool)
        if masks[labels == 0].any():
            raise ValueError("masks of normal images (label 0) must be all False")
        kinds = ["good" if y == 0 else "anomaly" for y in labels] if self.kinds is None else list(self.kinds)
        if len(kinds) != n:
            raise ValueError(f"kinds must have {n} entries like images, got {len(kinds)}")
        for kind, y in zip(kinds, labels, strict=True):
            if (kind == "good") != (y == 0):
                raise ValueError(f"kinds: 'good' must go with label 0 and only with it, got {kind!r} with label {y}")
        names = [f"{i:03d}" for i in range(n)] if self.names is None else [str(s) for s in self.names]
        if len(names) != n:
            raise ValueError(f"names must have {n} entries like images, got {len(names)}")
        self.images, self.labels, self.masks, self.kinds, self.names = images, labels, masks, kinds, names

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def grayscale(self) -> bool:
        """True for ``(N, H, W)`` images, False for RGB."""
        return self.images.ndim == 3

    def subset(self, idx) -> ImageSet:
        """The images at ``idx`` (integer indices of shape ``(K,)`` or a boolean array of shape ``(N,)``)."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"idx as a boolean array must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"idx must hold integers or booleans, got dtype {idx.dtype}")
        idx = idx.astype(np.int64).reshape(-1)
        return ImageSet(
            images=self.images[idx],
            labels=self.labels[idx],
            masks=self.masks[idx],
            kinds=[self.kinds[i] for i in idx],
            names=[self.names[i] for i in idx],
        )


def _pil():
    from flowad.core.extras import require

    return require("PIL.Image", "images", "reading and writing image folders")


def _size_hw(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int | np.integer):
        size = (int(size), int(size))
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int, a (height, width) pair or None, got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"size must be positive, got {size!r}")
    return h, w


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _find_mask(root: Path, kind: str, stem: str) -> Path | None:
    folder = root / "ground_truth" / kind
    if not folder.is_dir():
        return None
    for base in (f"{stem}_mask", stem):
        for suffix in IMAGE_SUFFIXES:
            for candidate in (folder / (base + suffix), folder / (base + suffix.upper())):
                if candidate.is_file():
                    return candidate
    return None


def load_image_folder(
    root: str | Path, split: str = "train", size: int | tuple[int, int] | None = None, grayscale: bool | None = None
) -> ImageSet:
    """Read one split of an MVTec-AD-style folder.

    Every sub-folder of ``root/<split>`` is a kind: ``good`` is normal (label 0), any other name is
    anomalous (label 1). Masks are read for anomalous test images from
    ``root/ground_truth/<kind>/<stem>_mask.png`` (or ``<stem>.png``); a missing mask gives an all-False
    mask and a logged warning. Kinds and files are read in sorted order (``good`` first).

    Args:
        root: The dataset folder.
        split: ``"train"`` or ``"test"``.
        size: Resize every image to ``(size, size)`` or ``(height, width)``: bilinear for images,
            nearest for masks. ``None`` keeps the files' sizes, which must then all agree.
        grayscale: True converts to ``(H, W)`` gray, False to ``(H, W, 3)`` RGB; ``None`` keeps gray
            if every file is grayscale, RGB otherwise.

    Returns:
        The images ``(N, H, W[, 3])`` uint8 with labels, masks ``(N, H, W)``, kinds and names (stems).

    Raises:
        FileNotFoundError: If ``root`` or ``root/<split>`` does not exist.
        ValueError: On a bad ``split`` or ``size``, a split without images, sizes that differ
            (pass ``size``) or a mask whose size differs from its image.
    """
    image_lib = _pil()
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    hw = _size_hw(size)
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder root not found: {root}")
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(
            f"split folder not found: {split_dir} (expected the MVTec AD layout root/{split}/<kind>/)"
        )
    kinds = sorted((p.name for p in split_dir.iterdir() if p.is_dir()), key=lambda k: (k != "good", k))
    files = [(kind, path) for kind in kinds for path in _image_files(split_dir / kind)]
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {split_dir}/<kind>/")

    if grayscale is None:
        modes = []
        for _, path in files:
            with image_lib.open(path) as img:  # reads the header only
                modes.append(img.mode)
        grayscale = all(m in ("L", "1", "LA", "I", "I;16", "F") for m in modes)
    mode = "L" if grayscale else "RGB"

    images, masks, missing = [], [], {}
    for kind, path in files:
        with image_lib.open(path) as raw:
            original = raw.size  # (width, height)
            img = raw.convert(mode)
        if hw is not None and img.size != (hw[1], hw[0]):
            img = img.resize((hw[1], hw[0]), image_lib.Resampling.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        mask = np.zeros(arr.shape[:2], bool)
        if kind != "good" and split == "test":
            mask_path = _find_mask(root, kind, path.stem)
            if mask_path is None:
                missing.setdefault(kind, []).append(path.stem)
            else:
                with image_lib.open(mask_path) as m:
                    m = m.convert("L")
                    if m.size != original:
                        raise ValueError(f"mask {mask_path} has size {m.size[::-1]}, its image {original[::-1]}")
                    if hw is not None and m.size != (hw[1], hw[0]):
                        m = m.resize((hw[1], hw[0]), image_lib.Resampling.NEAREST)
                    mask = np.asarray(m) > 0
        images.append(arr)
        masks.append(mask)
    for kind, stems in missing.items():
        shown = ", ".join(stems[:5]) + (" ..." if len(stems) > 5 else "")
        logger.warning(
            "%d anomalous image(s) in %s have no mask under %s (using all-False masks): %s",
            len(stems), split_dir / kind, root / "ground_truth" / kind, shown,
        )  # fmt: skip
    shapes = sorted({a.shape for a in images})
    if len(shapes) > 1:
        raise ValueError(f"images under {split_dir} differ in size ({shapes[:4]}); pass size=... to resize them")
    return ImageSet(
        images=np.stack(images),
        labels=np.array([0 if kind == "good" else 1 for kind, _ in files], dtype=np.int64),
        masks=np.stack(masks),
        kinds=[kind for kind, _ in files],
        names=[path.stem for _, path in files],
    )


def _check_folder_name(value: str, what: str) -> None:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\x00" in value:
        raise ValueError(f"{what} {value!r} cannot be used as a file or folder name")


def write_image_folder(
    root: str | Path, train: ImageSet | None = None, test: ImageSet | None = None, overwrite: bool = False
) -> Path:
    """Write image sets as PNGs in the MVTec AD layout (lossless: :func:`load_image_folder` reads them back exactly).

    ``train`` goes to ``root/train/<kind>/<name>.png`` (``good`` for normal images; no masks),
    ``test`` to ``root/test/<kind>/<name>.png`` and the masks of its anomalous images to
    ``root/ground_truth/<kind>/<name>_mask.png`` (0 / 255). Nothing is ever deleted.

    Args:
        root: Target folder; created if needed.
        train: The training images, or None.
        test: The test images, or None.
        overwrite: Allow writing into an existing non-empty ``root`` (files of the same name are
            replaced, other files are left alone).

    Returns:
        ``root`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If both sets are None, if ``root`` exists and is not an empty folder (unless
            ``overwrite``), or if a kind or name is not a valid file name or is repeated within a kind.
    """
    image_lib = _pil()
    root = Path(root)
    if train is None and test is None:
        raise ValueError("train and test are both None: nothing to write")
    for name, value in (("train", train), ("test", test)):
        if value is not None and not isinstance(value, ImageSet):
            raise ValueError(f"{name} must be an ImageSet or None, got {type(value).__name__}")
    if root.exists():
        if not root.is_dir():
            raise ValueError(f"root {root} exists and is not a folder")
        if any(root.iterdir()) and not overwrite:
            raise ValueError(f"root {root} exists and is not empty; pass overwrite=True to write into it")
    for split, data in (("train", train), ("test", test)):
        if data is None:
            continue
        seen = set()
        for kind, stem in zip(data.kinds, data.names, strict=True):
            _check_folder_name(kind, f"{split} kind")
            _check_folder_name(stem, f"{split} name")
            if (kind, stem) in seen:
                raise ValueError(f"{split} names must be unique within a kind; {kind}/{stem} is repeated")
            seen.add((kind, stem))
    for split, data in (("train", train), ("test", test)):
        if data is None:
            continue
        for i in range(len(data)):
            folder = root / split / data.kinds[i]
            folder.mkdir(parents=True, exist_ok=True)
            image_lib.fromarray(data.images[i]).save(folder / f"{data.names[i]}.png")
            if split == "test" and data.labels[i] == 1:
                gt = root / "ground_truth" / data.kinds[i]
                gt.mkdir(parents=True, exist_ok=True)
                mask = data.masks[i].astype(np.uint8) * 255
                image_lib.fromarray(mask).save(gt / f"{data.names[i]}_mask.png")
    return root
