"""The U-Net segmenter trained on images with known (pasted) anomalies, and two-class PatchFlow."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flowad import io
from flowad.evaluation.image_metrics import pixel_roc_auc
from flowad.models import PatchFlowDetector, UNet, UNetSegmenter
from flowad.models.unet.estimator import _augmentation, segmentation_losses
from tests.models.test_image_models import stripes, with_squares

torch.set_num_threads(1)


def tiny(**params) -> UNetSegmenter:
    return UNetSegmenter(**{"base_channels": 8, "depth": 2, "max_epochs": 3, "crop_size": None,
                            "random_state": 0, **params})  # fmt: skip


@pytest.mark.parametrize("shape", [(32, 32), (37, 45)])
def test_unet_keeps_the_input_size(shape):
    net = UNet(3, base_channels=4, depth=3).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, *shape)).shape == (2, 1, *shape)


def test_loss_prefers_the_right_mask_and_empties_normal_maps():
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, :, 2:5, 2:5] = 1
    right = torch.where(masks > 0, 6.0, -6.0)
    wrong = -right
    assert (segmentation_losses(right, masks) < segmentation_losses(wrong, masks)).all()
    # on the empty mask the loss keeps falling as the predicted probabilities fall
    low, lower = torch.full((1, 1, 8, 8), -2.0), torch.full((1, 1, 8, 8), -6.0)
    empty = torch.zeros(1, 1, 8, 8)
    assert segmentation_losses(lower, empty) < segmentation_losses(low, empty)


def test_crops_and_flips_move_image_and_mask_together():
    images = torch.rand(6, 2, 20, 20)
    batch = torch.cat([images, (images[:, :1] > 0.5).float()], 1)  # mask channel = a function of the image
    out = _augmentation(True, 8)(batch, None, torch.Generator().manual_seed(0))
    assert out.shape == (6, 3, 8, 8)
    torch.testing.assert_close(out[:, 2], (out[:, 0] > 0.5).float())
    whole = _augmentation(False, None)(batch, None, torch.Generator().manual_seed(0))
    torch.testing.assert_close(whole, batch)


def test_segmenter_learns_pasted_squares_and_follows_the_image_contract():
    normal = stripes(24, seed=0)
    negatives, masks = with_squares(stripes(24, seed=1), seed=2)
    # 24 normal images leave 2 for calibration: the smallest p-value is 1/3, so ask for a third
    segmenter = tiny(max_epochs=25, contamination=0.34).fit(normal, negative_images=negatives, negative_masks=masks)
    test, test_masks = with_squares(stripes(6, seed=7), seed=8)  # new images, new places
    maps = segmenter.anomaly_map(test)
    assert maps.shape == test.shape and maps.dtype == np.float64 and np.isfinite(maps).all()
    assert pixel_roc_auc(test_masks, maps) > 0.95
    scores = segmenter.score_samples(np.concatenate([stripes(6, seed=9), test]))
    assert scores[:6].min() > scores[6:].max()  # every normal image above every defective one
    assert (segmenter.predict(test) == -1).all()  # the threshold from held-out normal images flags them all


def test_segmenter_round_trips_through_model_files(tmp_path):
    negatives, masks = with_squares(stripes(6, rgb=True, seed=1), seed=2)
    segmenter = tiny().fit(stripes(12, rgb=True), negative_images=negatives, negative_masks=masks)
    io.save(segmenter, tmp_path / "unet")
    loaded = io.load(tmp_path / "unet")
    test = stripes(2, rgb=True, seed=3)
    assert isinstance(loaded, UNetSegmenter) and loaded.offset_ == segmenter.offset_
    np.testing.assert_allclose(loaded.anomaly_map(test), segmenter.anomaly_map(test), rtol=1e-5, atol=1e-5)


def test_segmenter_needs_negatives_and_sane_parameters():
    with pytest.raises(ValueError, match="negative_images"):
        tiny().fit(stripes(12))
    negatives, masks = with_squares(stripes(4, seed=1))
    with pytest.raises(ValueError, match="crop_size"):
        tiny(crop_size=2).fit(stripes(12), negative_images=negatives, negative_masks=masks)
    with pytest.raises(ValueError, match="depth"):
        tiny(depth=0).fit(stripes(12), negative_images=negatives, negative_masks=masks)
    with pytest.raises(ValueError, match="negative_masks must have shape"):
        tiny().fit(stripes(12), negative_images=negatives, negative_masks=masks[:, :8])


def test_patchflow_two_class_training_lowers_the_pasted_patches():
    params = {"patch_size": 8, "stride": 4, "levels": 1, "steps": 2, "hidden_channels": 16, "max_patches": 1500,
              "max_epochs": 6, "random_state": 0}
    normal = stripes(24, seed=0)
    negatives, masks = stripes(12, seed=4), np.zeros((12, 32, 32), bool)
    masks[:, 8:20, 8:20] = True
    negatives[masks] = np.clip(negatives[masks].astype(int) + 40, 0, 255).astype(np.uint8)  # brighter squares
    one_class = PatchFlowDetector(**params).fit(normal)
    two_class = PatchFlowDetector(**params).fit(normal, negative_images=negatives, negative_masks=masks)
    assert np.isfinite(two_class.negative_floor_)
    before, after = one_class.anomaly_map(negatives), two_class.anomaly_map(negatives)
    # the anomalous region stands out more against the rest of the image after two-class training
    assert after[masks].mean() - after[~masks].mean() > before[masks].mean() - before[~masks].mean()
    with pytest.raises(ValueError, match="no anomalous pixel"):
        PatchFlowDetector(**params).fit(normal, negative_images=negatives, negative_masks=np.zeros_like(masks))
