"""Image anomaly metrics: image-level ROC-AUC and best F1, pixel-level ROC-AUC and best F1, and AUPRO.

Labels: 1 = anomalous image. Masks: True on anomalous pixels. Scores and maps are anomaly scores
(higher = more anomalous; the caller flips a detector's normality scores). Pixel metrics pool the
pixels of all test images.

AUPRO follows Bergmann et al., "The MVTec Anomaly Detection Dataset: A Comprehensive Real-World
Dataset for Unsupervised Anomaly Detection" (IJCV 2021) and its evaluation code: ground-truth
regions are the 8-connected components of each mask; at each threshold the per-region overlap
(PRO) is the mean over all regions of the share of the region's pixels at or above the threshold,
and the false-positive rate is taken over all pixels outside the masks; the PRO curve is integrated
over FPR in ``[0, fpr_limit]`` (interpolated at the limit) and divided by ``fpr_limit``. The curve is
exact (every distinct score is a threshold) and computed with one sort of all pixels.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from flowad.evaluation.tabular_metrics import best_f1, roc_auc

__all__ = [
    "ImageMetrics",
    "aupro",
    "evaluate_image_detector_outputs",
    "image_best_f1",
    "image_roc_auc",
    "pixel_best_f1",
    "pixel_roc_auc",
    "pro_curve",
]

logger = logging.getLogger(__name__)

_STRUCTURE = np.ones((3, 3), dtype=int)  # 8-connectivity, as in the MVTec AD evaluation code


def _check_masks_maps(masks, maps, masks_name: str = "masks", maps_name: str = "maps"):
    m = np.asarray(masks)
    if m.ndim != 3 or m.size == 0:
        raise ValueError(f"{masks_name} must be a non-empty (N, H, W) array, got shape {m.shape}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"{masks_name} must be boolean (or hold only 0 and 1)")
        m = m.astype(bool)
    s = np.asarray(maps, dtype=np.float64)
    if s.shape != m.shape:
        raise ValueError(f"{maps_name} must have shape {m.shape} like {masks_name}, got {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError(f"{maps_name} contains NaN or infinite values")
    if not m.any() or m.all():
        raise ValueError(f"{masks_name} must contain both anomalous (True) and normal (False) pixels")
    return m, s


def _descending(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order of ``scores`` (flat) from high to low, the sorted scores, and the last index of each distinct value."""
    order = np.argsort(scores)[::-1]
    ranked = scores[order]
    ends = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(ranked) - 1]
    return order, ranked, ends


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _pixel_counts(masks: np.ndarray, order: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct threshold (pixels scored at or above it)."""
    tps = np.cumsum(masks.ravel()[order], dtype=np.int64)[ends]
    return tps, ends + 1 - tps


def _roc_from(tps: np.ndarray, fps: np.ndarray) -> float:
    tpr, fpr = np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]
    return _trapezoid(tpr, fpr)


def _best_f1_from(tps: np.ndarray, fps: np.ndarray, ranked: np.ndarray, ends: np.ndarray) -> tuple[float, float]:
    precision, recall = tps / (tps + fps), tps / tps[-1]
    total = precision + recall
    f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1.0), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), float(ranked[ends[i]])


def _pro_from(masks: np.ndarray, order: np.ndarray, ends: np.ndarray, fps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fpr, pro)`` with the point ``(0, 0)`` first; ``fps`` from :func:`_pixel_counts`."""
    regions = np.zeros(masks.shape, dtype=np.int64)
    n_regions = 0
    for i in range(len(masks)):
        labelled, n = ndimage.label(masks[i], structure=_STRUCTURE)
        regions[i] = np.where(labelled > 0, labelled + n_regions, 0)
        n_regions += n
    sizes = np.bincount(regions.ravel(), minlength=n_regions + 1).astype(np.float64)
    weight = np.zeros(n_regions + 1)
    weight[1:] = 1.0 / (sizes[1:] * n_regions)
    pro = np.minimum(np.cumsum(weight[regions.ravel()[order]])[ends], 1.0)
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, pro]


def _area(fpr: np.ndarray, pro: np.ndarray, fpr_limit: float) -> float:
    k = int(np.searchsorted(fpr, fpr_limit, side="right"))
    x, y = fpr[:k], pro[:k]
    if k < len(fpr) and x[-1] < fpr_limit:
        x0, x1, y0, y1 = fpr[k - 1], fpr[k], pro[k - 1], pro[k]
        x, y = np.r_[x, fpr_limit], np.r_[y, y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)]
    return _trapezoid(y, x) / fpr_limit


def _check_limit(fpr_limit: float) -> float:
    if not 0.0 < fpr_limit <= 1.0:
        raise ValueError(f"fpr_limit must be in (0, 1], got {fpr_limit!r}")
    return float(fpr_limit)


def image_roc_auc(labels, image_scores) -> float:
    """Image-level ROC-AUC.

    Args:
        labels: Shape ``(N,)``, 1 = anomalous image; both classes present.
        image_scores: Shape ``(N,)``, higher = more anomalous.
    """
    return roc_auc(labels, image_scores)


def image_best_f1(labels, image_scores) -> tuple[float, float]:
    """Image-level best F1 over all thresholds and its threshold (optimistic: chosen on the test labels)."""
    return best_f1(labels, image_scores)


def pixel_roc_auc(masks, maps) -> float:
    """Pixel-level ROC-AUC over the pixels of all images.

    Args:
        masks: Shape ``(N, H, W)`` bool, True on anomalous pixels; both classes present.
        maps: Shape ``(N, H, W)``, anomaly maps, higher = more anomalous.
    """
    m, s = _check_masks_maps(masks, maps)
    order, _, ends = _descending(s.ravel())
    return _roc_from(*_pixel_counts(m, order, ends))


def pixel_best_f1(masks, maps) -> tuple[float, float]:
    """Pixel-level best F1 over all thresholds and the threshold reaching it (pixels ``>= threshold`` flagged).

    Args:
        masks: Shape ``(N, H, W)`` bool.
        maps: Shape ``(N, H, W)``, higher = more anomalous.
    """
    m, s = _check_masks_maps(masks, maps)
    order, ranked, ends = _descending(s.ravel())
    return _best_f1_from(*_pixel_counts(m, order, ends), ranked, ends)


def pro_curve(masks, maps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact per-region-overlap curve.

    Args:
        masks: Shape ``(N, H, W)`` bool.
        maps: Shape ``(N, H, W)``, higher = more anomalous.

    Returns:
        ``(fpr, pro, thresholds)``, each of shape ``(T + 1,)`` for ``T`` distinct map values: the
        first point is ``(0, 0)`` at threshold ``+inf``, then one point per distinct value from high
        to low (pixels ``>= threshold`` flagged); ``fpr`` and ``pro`` are non-decreasing.
    """
    m, s = _check_masks_maps(masks, maps)
    order, ranked, ends = _descending(s.ravel())
    fpr, pro = _pro_from(m, order, ends, _pixel_counts(m, order, ends)[1])
    return fpr, pro, np.r_[np.inf, ranked[ends]]


def aupro(masks, maps, fpr_limit: float = 0.3) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (1.0 is perfect; a random map gives
    about ``fpr_limit / 2``).

    Args:
        masks: Shape ``(N, H, W)`` bool, True on anomalous pixels; both classes present.
        maps: Shape ``(N, H, W)``, higher = more anomalous.
        fpr_limit: Upper integration limit of the false-positive rate, in (0, 1]; 0.3 as in MVTec AD.
    """
    fpr_limit = _check_limit(fpr_limit)
    fpr, pro, _ = pro_curve(masks, maps)
    return _area(fpr, pro, fpr_limit)


@dataclass
class ImageMetrics:
    """Metrics of one image detector on one test set (pixel metrics NaN when there are no masks)."""

    image_roc_auc: float
    pixel_roc_auc: float
    aupro: float
    image_best_f1: float
    pixel_best_f1: float
    n_images: int
    n_anomalous: int

    def as_dict(self) -> dict[str, float]:
        """Plain dictionary (for tables and JSON)."""
        return asdict(self)


def evaluate_image_detector_outputs(
    labels, masks=None, image_scores=None, maps=None, fpr_limit: float = 0.3
) -> ImageMetrics:
    """All image and pixel metrics of one detector's outputs (one sort of the pixels serves all pixel metrics).

    Args:
        labels: Shape ``(N,)``, 1 = anomalous image; both classes present.
        masks: Shape ``(N, H, W)`` bool, or None. Pixel metrics are NaN if None or without any
            anomalous pixel.
        image_scores: Shape ``(N,)``, higher = more anomalous; None takes the maximum of each map.
        maps: Shape ``(N, H, W)``, higher = more anomalous, or None (then pixel metrics are NaN).
        fpr_limit: Integration limit of :func:`aupro`.
    """
    fpr_limit = _check_limit(fpr_limit)
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array of 0/1 labels, got shape {y.shape}")
    if maps is not None:
        maps = np.asarray(maps, dtype=np.float64)
        if maps.ndim != 3 or len(maps) != len(y):
            raise ValueError(f"maps must have shape ({len(y)}, H, W) like labels, got {maps.shape}")
    if image_scores is None:
        if maps is None:
            raise ValueError("image_scores and maps are both None: give image_scores, maps or both")
        if not np.isfinite(maps).all():
            raise ValueError("maps contains NaN or infinite values")
        image_scores = maps.reshape(len(maps), -1).max(axis=1)
    image_auc = image_roc_auc(y, image_scores)
    image_f1 = image_best_f1(y, image_scores)[0]
    pixel_auc = pro = pixel_f1 = float("nan")
    if masks is not None and maps is not None:
        m = np.asarray(masks)
        if m.shape != maps.shape:
            raise ValueError(f"masks must have shape {maps.shape} like maps, got {m.shape}")
        if m.any():
            m, s = _check_masks_maps(m, maps)
            order, ranked, ends = _descending(s.ravel())
            tps, fps = _pixel_counts(m, order, ends)
            pixel_auc = _roc_from(tps, fps)
            pixel_f1 = _best_f1_from(tps, fps, ranked, ends)[0]
            pro = _area(*_pro_from(m, order, ends, fps), fpr_limit)
        else:
            logger.info("masks hold no anomalous pixel: pixel metrics are NaN")
    return ImageMetrics(
        image_roc_auc=image_auc,
        pixel_roc_auc=pixel_auc,
        aupro=pro,
        image_best_f1=image_f1,
        pixel_best_f1=pixel_f1,
        n_images=len(y),
        n_anomalous=int(np.sum(y == 1)),
    )
