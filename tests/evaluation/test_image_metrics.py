"""Image metrics: pixel ROC-AUC, pixel best F1, the PRO curve and AUPRO, and the combined evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from flowad.evaluation.image_metrics import (
    ImageMetrics,
    aupro,
    evaluate_image_detector_outputs,
    image_best_f1,
    image_roc_auc,
    pixel_best_f1,
    pixel_roc_auc,
    pro_curve,
)
from flowad.evaluation.tabular_metrics import best_f1


def _masks(n: int = 6, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), bool)
    for i in range(n // 2):
        for _ in range(1 + i % 2):
            r, c = rng.integers(0, size - 8, 2)
            masks[i, r : r + rng.integers(1, 8), c : c + rng.integers(1, 8)] = True
    return masks


def _brute_pro(masks: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PRO curve by a loop over every distinct threshold (the definition, slowly)."""
    regions = []  # (image index, region mask)
    for i, m in enumerate(masks):
        labelled, n = ndimage.label(m, structure=np.ones((3, 3)))
        regions += [(i, labelled == k) for k in range(1, n + 1)]
    fpr, pro = [0.0], [0.0]
    for t in np.unique(maps)[::-1]:
        flagged = maps >= t
        fpr.append((flagged & ~masks).sum() / (~masks).sum())
        pro.append(np.mean([flagged[i][region].mean() for i, region in regions]))
    return np.array(fpr), np.array(pro)


def _area(fpr: np.ndarray, pro: np.ndarray, limit: float) -> float:
    """Area under the piecewise-linear curve on a fine grid, divided by ``limit`` (independent of the library)."""
    grid = np.linspace(0, limit, 200001)
    j = np.searchsorted(fpr, grid, side="right") - 1  # last point at or left of x
    k = np.minimum(j + 1, len(fpr) - 1)  # first point right of it
    gap = fpr[k] - fpr[j]
    slope = np.where(gap > 0, (pro[k] - pro[j]) / np.where(gap > 0, gap, 1), 0)
    values = pro[j] + slope * (grid - fpr[j])
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(grid)) / limit)


# -------------------------------------------------------------------------------------------- AUPRO


def test_perfect_map_scores_one():
    masks = _masks()
    maps = masks.astype(float)
    assert aupro(masks, maps) == pytest.approx(1.0)
    assert pixel_roc_auc(masks, maps) == pytest.approx(1.0)
    f1, threshold = pixel_best_f1(masks, maps)
    assert f1 == pytest.approx(1.0) and threshold == 1.0
    assert aupro(masks, -maps) == pytest.approx(0.0)


def test_random_map_scores_about_half_the_limit():
    masks = _masks(n=20, size=64, seed=1)
    maps = np.random.default_rng(2).random(masks.shape)
    assert aupro(masks, maps, fpr_limit=0.3) == pytest.approx(0.15, abs=0.03)
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(0.5, abs=0.05)
    assert pixel_roc_auc(masks, maps) == pytest.approx(0.5, abs=0.03)


def test_hand_built_pro_values():
    # one image, one row: region A = pixels 0-1 (size 2), pixel 2 normal, region B = pixel 3, 4-7 normal
    masks = np.array([[[1, 1, 0, 1, 0, 0, 0, 0]]], bool)
    maps = np.array([[[0.9, 0.5, 0.8, 0.3, 0.7, 0.2, 0.1, 0.0]]])
    fpr, pro, thresholds = pro_curve(masks, maps)
    np.testing.assert_allclose(fpr, [0, 0, 0.2, 0.4, 0.4, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(pro, [0, 0.25, 0.25, 0.25, 0.5, 1, 1, 1, 1])
    assert thresholds[0] == np.inf and thresholds[1] == 0.9 and thresholds[-1] == 0.0
    # area up to 0.3: 0.25 * 0.3; up to 0.5: 0.25 * 0.4 + 1 * 0.1; up to 1: 0.25 * 0.4 + 1 * 0.6
    assert aupro(masks, maps, fpr_limit=0.3) == pytest.approx(0.25)
    assert aupro(masks, maps, fpr_limit=0.5) == pytest.approx(0.2 / 0.5)
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(0.7)


def test_tied_scores_interpolate_at_the_limit():
    # normal pixels 0-3 and the region's 2 pixels; scores tied across classes draw diagonal segments
    masks = np.array([[[0, 0, 0, 0, 1, 1]]], bool)
    maps = np.array([[[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]]])
    fpr, pro, _ = pro_curve(masks, maps)
    np.testing.assert_allclose(fpr, [0, 0.25, 1.0])
    np.testing.assert_allclose(pro, [0, 0.5, 1.0])
    # up to 0.5: triangle to (0.25, 0.5), then from (0.25, 0.5) to (0.5, 0.5 + 0.5 * 0.25 / 0.75)
    y_half = 0.5 + 0.5 * (0.25 / 0.75)
    expected = (0.5 * 0.25 * 0.5 + 0.25 * (0.5 + y_half) / 2) / 0.5
    assert aupro(masks, maps, fpr_limit=0.5) == pytest.approx(expected)


def test_regions_count_equally_whatever_their_size():
    masks = np.zeros((2, 20, 20), bool)
    masks[0, 2:18, 2:18] = True  # large region, found
    masks[1, 5, 5] = True  # one-pixel region, missed
    maps = np.zeros(masks.shape)
    maps[0, 2:18, 2:18] = 1.0
    fpr, pro, _ = pro_curve(masks, maps)
    assert pro[1] == pytest.approx(0.5) and fpr[1] == 0.0
    assert aupro(masks, maps, fpr_limit=1.0) == pytest.approx(0.5 + 0.5 * 0.5, abs=1e-9)
    # diagonal neighbours form one region (8-connectivity)
    diag = np.zeros((1, 5, 5), bool)
    diag[0, [1, 2, 3], [1, 2, 3]] = True
    half = np.zeros((1, 5, 5))
    half[0, 1, 1] = 1.0
    assert pro_curve(diag, half)[1][1] == pytest.approx(1 / 3)


def test_pro_curve_matches_the_definition_with_ties():
    masks = _masks(n=6, size=16, seed=3)
    maps = np.random.default_rng(4).integers(0, 12, masks.shape).astype(float) + 3 * masks
    fpr, pro, _ = pro_curve(masks, maps)
    brute_fpr, brute_pro = _brute_pro(masks, maps)
    np.testing.assert_allclose(fpr, brute_fpr)
    np.testing.assert_allclose(pro, brute_pro, atol=1e-12)
    for limit in (0.05, 0.3, 1.0):
        assert aupro(masks, maps, fpr_limit=limit) == pytest.approx(_area(fpr, pro, limit), abs=1e-4)


# ---------------------------------------------------------------------------------- pixel metrics


def test_pixel_metrics_match_scikit_learn_and_best_f1():
    masks = _masks(n=8, size=24, seed=5)
    rng = np.random.default_rng(6)
    maps = rng.normal(size=masks.shape) + 1.5 * masks
    assert pixel_roc_auc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))
    tied = np.round(maps)
    assert pixel_roc_auc(masks, tied) == pytest.approx(roc_auc_score(masks.ravel(), tied.ravel()))
    f1, threshold = pixel_best_f1(masks, tied)
    ref_f1, ref_threshold = best_f1(masks.ravel().astype(int), tied.ravel())
    assert f1 == pytest.approx(ref_f1) and threshold == ref_threshold


@pytest.mark.parametrize(
    ("masks", "maps", "match"),
    [
        (np.zeros((2, 4, 4), bool), np.zeros((2, 4, 4)), "masks"),
        (np.ones((2, 4, 4), bool), np.zeros((2, 4, 4)), "masks"),
        (np.eye(4, dtype=bool)[None], np.zeros((1, 4, 5)), "maps"),
        (np.eye(4, dtype=bool)[None], np.full((1, 4, 4), np.nan), "maps"),
        (np.eye(4, dtype=bool), np.zeros((4, 4)), "masks"),
        (np.eye(4)[None] * 2, np.zeros((1, 4, 4)), "masks"),
    ],
)
def test_pixel_metrics_reject_bad_input(masks, maps, match):
    for metric in (pixel_roc_auc, pixel_best_f1, aupro):
        with pytest.raises(ValueError, match=match):
            metric(masks, maps)


def test_fpr_limit_is_checked():
    masks = _masks()
    for limit in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="fpr_limit"):
            aupro(masks, masks.astype(float), fpr_limit=limit)


# ------------------------------------------------------------------------------------- evaluation


def test_evaluate_image_detector_outputs():
    masks = _masks(n=10, size=32, seed=7)
    labels = masks.reshape(10, -1).any(axis=1).astype(int)
    maps = np.random.default_rng(8).random(masks.shape) + masks
    scores = maps.reshape(10, -1).max(axis=1)
    result = evaluate_image_detector_outputs(labels, masks, scores, maps)
    assert isinstance(result, ImageMetrics) and result.n_images == 10 and result.n_anomalous == labels.sum()
    assert result.image_roc_auc == pytest.approx(image_roc_auc(labels, scores))
    assert result.image_best_f1 == pytest.approx(image_best_f1(labels, scores)[0])
    assert result.pixel_roc_auc == pytest.approx(pixel_roc_auc(masks, maps))
    assert result.pixel_best_f1 == pytest.approx(pixel_best_f1(masks, maps)[0])
    assert result.aupro == pytest.approx(aupro(masks, maps))
    assert evaluate_image_detector_outputs(labels, masks, None, maps) == result
    assert set(result.as_dict()) >= {"image_roc_auc", "pixel_roc_auc", "aupro", "image_best_f1", "pixel_best_f1"}
    no_pixels = evaluate_image_detector_outputs(labels, image_scores=scores)
    assert no_pixels.image_roc_auc == result.image_roc_auc and math.isnan(no_pixels.aupro)
    assert math.isnan(evaluate_image_detector_outputs(labels, np.zeros_like(masks), scores, maps).pixel_roc_auc)
    with pytest.raises(ValueError, match="masks"):
        evaluate_image_detector_outputs(labels, masks[:, :4], scores, maps)
    with pytest.raises(ValueError, match="maps"):
        evaluate_image_detector_outputs(labels, masks, scores, maps[:5])
    with pytest.raises(ValueError, match="image_scores and maps"):
        evaluate_image_detector_outputs(labels, masks)
    with pytest.raises(ValueError, match="anomaly_score"):
        evaluate_image_detector_outputs(labels, masks, scores[:3], maps)


def test_per_kind_metrics_score_each_kind_against_the_good_images():
    from flowad_studies.image_bench import per_kind_metrics

    from flowad.datasets.image_folder import ImageSet

    rng = np.random.default_rng(3)
    masks = np.zeros((6, 16, 16), bool)
    masks[2:4, 4:8, 4:8] = True  # kind "a"
    masks[4:6, 8:12, 2:6] = True  # kind "b"
    maps = rng.random((6, 16, 16)) + 2.0 * masks * np.array([0, 0, 1, 1, 0.2, 0.2])[:, None, None]
    test = ImageSet(np.zeros((6, 16, 16), np.uint8), np.array([0, 0, 1, 1, 1, 1]), masks,
                    kinds=["good", "good", "a", "a", "b", "b"], names=[str(i) for i in range(6)])
    scores = maps.reshape(6, -1).max(1)
    out = per_kind_metrics(test, scores, maps)
    assert sorted(out) == ["a", "b"]
    both_a, both_b = np.r_[0, 1, 2, 3], np.r_[0, 1, 4, 5]
    assert out["a"]["aupro"] == pytest.approx(aupro(masks[both_a], maps[both_a]))
    assert out["b"]["aupro"] == pytest.approx(aupro(masks[both_b], maps[both_b]))
    assert out["b"]["pixel_roc_auc"] == pytest.approx(pixel_roc_auc(masks[4:], maps[4:]))
    assert out["a"]["aupro"] > out["b"]["aupro"]  # the clearly marked kind localises better
