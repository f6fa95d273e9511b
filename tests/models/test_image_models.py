"""Image detectors: the contract (shapes, thresholds, errors), localisation floors, model files."""

import numpy as np
import pytest

from flowad import io
from flowad.backbones.efficientnet import backbone_available
from flowad.core.image_estimator import aggregate_maps, as_image_tensor
from flowad.core.image_maps import extract_patches, gaussian_smooth, patch_average_map
from flowad.evaluation.image_metrics import pixel_roc_auc
from flowad.models import ConvAutoencoderDetector, FastFlowDetector, PatchFlowDetector

needs_backbone = pytest.mark.skipif(not backbone_available(), reason="EfficientNet-Lite0 not installed")

TINY = {
    "fastflow": lambda: FastFlowDetector(stages=("stride4", "stride8"), steps=2, max_epochs=3, random_state=0),
    "patchflow": lambda: PatchFlowDetector(patch_size=8, stride=4, levels=1, steps=2, hidden_channels=16,
                                           max_patches=500, max_epochs=2, random_state=0),
    "autoencoder": lambda: ConvAutoencoderDetector(base_channels=8, max_epochs=3, random_state=0),
}


def stripes(n, size=32, rgb=False, seed=0):
    """Normal images: noisy vertical stripes, uint8."""
    rng = np.random.default_rng(seed)
    base = 128 + 60 * np.sin(np.arange(size) / 2.0)[None, None, :]
    images = base + rng.normal(0, 8, size=(n, size, size))
    images = np.clip(images, 0, 255).astype(np.uint8)
    return np.repeat(images[..., None], 3, axis=3) if rgb else images


def with_squares(images, side=6, seed=1):
    """Every image gets a white square at a random place; returns (images, masks)."""
    rng = np.random.default_rng(seed)
    out, masks = images.copy(), np.zeros(images.shape[:3], bool)
    for i in range(len(out)):
        r, c = rng.integers(2, images.shape[1] - side - 2, 2)
        out[i, r : r + side, c : c + side] = 255
        masks[i, r : r + side, c : c + side] = True
    return out, masks


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("rgb", [False, True])
def test_maps_have_image_shapes_and_scores_follow_the_contract(name, rgb):
    if name == "fastflow" and not backbone_available():
        pytest.skip("EfficientNet-Lite0 not installed")
    train = stripes(12, rgb=rgb)
    detector = TINY[name]().fit(train)
    test = stripes(3, size=40, rgb=rgb, seed=5)  # another size than training: maps follow the input
    maps = detector.anomaly_map(test)
    assert maps.shape == (3, 40, 40) and maps.dtype == np.float64 and np.isfinite(maps).all()
    scores = detector.score_samples(test)
    if getattr(detector, "image_score_sigma", None) is not None:  # FastFlow: the score reads its own blur's map
        assert detector.smooth_sigma != detector.image_score_sigma  # the defaults differ, as checked here
        maps = detector.set_params(smooth_sigma=detector.image_score_sigma).anomaly_map(test)
    np.testing.assert_allclose(scores, -aggregate_maps(maps, "max"))
    np.testing.assert_allclose(detector.decision_function(test), scores - detector.offset_)
    assert set(detector.predict(test)) <= {-1, 1}


@needs_backbone
def test_fastflow_finds_an_obvious_defect():
    train = stripes(24, seed=0)
    defective, masks = with_squares(stripes(6, seed=9))
    detector = FastFlowDetector(input_size=64, steps=4, max_epochs=15, random_state=0).fit(train)
    maps = detector.anomaly_map(defective)
    assert pixel_roc_auc(masks, maps) > 0.95
    normal_scores = detector.score_samples(stripes(6, seed=11))
    assert detector.score_samples(defective).max() < normal_scores.min()


@needs_backbone
def test_backbone_stages_have_their_documented_strides_and_channels():
    import torch

    from flowad.backbones.efficientnet import STAGES, EfficientNetLite0Features

    backbone = EfficientNetLite0Features(tuple(STAGES))
    assert backbone.stages == tuple(sorted(STAGES, key=lambda s: STAGES[s][0]))
    features = backbone(torch.rand(1, 1, 64, 96))
    for name, f in zip(backbone.stages, features, strict=True):
        _, stride, channels = STAGES[name]
        assert f.shape == (1, channels, 64 // stride, 96 // stride), name
    early, late = (features[backbone.stages.index(s)] for s in ("stride16_early", "stride16"))
    assert early.shape[2:] == late.shape[2:] and early.shape[1] != late.shape[1]


def test_backbone_input_resizes_the_shorter_side_and_mirrors_a_margin():
    import torch

    from flowad.models.fastflow.torch_model import backbone_input

    x = torch.rand(2, 1, 20, 30)
    resized = backbone_input(x, 40, 0)
    assert resized.shape == (2, 1, 40, 60)  # aspect ratio kept
    assert backbone_input(x, None, 0) is x
    padded = backbone_input(x, None, 4)
    assert padded.shape == (2, 1, 28, 38)
    torch.testing.assert_close(padded[..., 4:-4, 4:-4], x)
    torch.testing.assert_close(padded[..., 4:-4, 3], x[..., :, 1])  # mirrored about the first column
    torch.testing.assert_close(padded[..., 0, 4:-4], x[..., 4, :])


def test_mask_cells_line_up_with_the_image_cells_inside_the_margin():
    """Two-class labels: after the mirrored margin is cut, the labelled cells are exactly those that
    the unpadded mask overlaps."""
    import torch
    import torch.nn.functional as F

    from flowad.models.fastflow.estimator import mask_cells

    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, :4, :4] = True  # at the corner: mirrored into the margin too
    masks[1, 30:41, 50:52] = True
    cells = mask_cells(masks, (24, 24), None, 16)  # stride 4: 16 px margin = 4 cells
    expected = (F.adaptive_max_pool2d(masks[:, None].float(), (16, 16))[:, 0] > 0).float()
    torch.testing.assert_close(cells[:, 4:-4, 4:-4], expected)
    assert cells[0, 3, 4] == 1 and cells[1, :4].sum() == 0  # the corner mask reaches the margin


@needs_backbone
def test_reflect_margin_removes_the_border_excess_of_normal_maps():
    """Zero padding in the backbone makes the border of a normal texture look anomalous; the
    mirrored margin removes that excess (measured in standard deviations of the interior)."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    field = ndimage.gaussian_filter(rng.normal(size=(256, 256)), 1.5)
    texture = np.clip(128 + 60 * field / field.std(), 0, 255).astype(np.uint8)
    crops = np.stack([texture[r : r + 48, c : c + 48] for r, c in rng.integers(0, 256 - 48, size=(60, 2))])
    border = np.zeros((48, 48), bool)
    border[:4] = border[-4:] = border[:, :4] = border[:, -4:] = True

    def border_excess(margin):
        detector = FastFlowDetector(stages=("stride4", "stride8"), input_size=None, reflect_margin=margin,
                                    steps=2, max_epochs=8, random_state=0).fit(crops[:30])
        maps = detector.anomaly_map(crops[30:])
        return (maps[:, border].mean() - maps[:, ~border].mean()) / maps[:, ~border].std()

    assert border_excess(0) > 0.2
    assert abs(border_excess(16)) < 0.1


def test_autoencoder_and_patchflow_localise_an_obvious_defect():
    train = stripes(24, seed=0)
    defective, masks = with_squares(stripes(6, seed=9))
    patchflow = PatchFlowDetector(patch_size=8, stride=2, levels=1, steps=2, hidden_channels=32,
                                  max_patches=3000, max_epochs=8, random_state=0).fit(train)
    assert pixel_roc_auc(masks, patchflow.anomaly_map(defective)) > 0.9
    autoencoder = ConvAutoencoderDetector(base_channels=16, max_epochs=30, random_state=0).fit(train)
    assert pixel_roc_auc(masks, autoencoder.anomaly_map(defective)) > 0.9


@pytest.mark.parametrize("name", sorted(TINY))
def test_model_files_round_trip(name, tmp_path):
    if name == "fastflow" and not backbone_available():
        pytest.skip("EfficientNet-Lite0 not installed")
    train, test = stripes(12), stripes(2, seed=3)
    detector = TINY[name]().fit(train)
    io.save(detector, tmp_path / "model")
    loaded = io.load(tmp_path / "model")
    assert type(loaded) is type(detector) and loaded.offset_ == detector.offset_
    np.testing.assert_allclose(loaded.anomaly_map(test), detector.anomaly_map(test), rtol=1e-5, atol=1e-6)


def test_same_seed_same_model():
    train, test = stripes(12), stripes(2, seed=3)
    first = TINY["autoencoder"]().fit(train).anomaly_map(test)
    second = TINY["autoencoder"]().fit(train).anomaly_map(test)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize(
    "images, error, match",
    [
        (np.zeros((2, 8)), ValueError, r"\(N, H, W\)"),
        (np.zeros((2, 8, 8, 2)), ValueError, r"\(N, H, W, 3\)"),
        (np.zeros((0, 8, 8)), ValueError, "at least one"),
        (np.full((2, 8, 8), np.nan), ValueError, "NaN"),
        (np.full((2, 8, 8), 3.0), ValueError, r"\[0, 1\]"),
        (np.array([[["a"]]]), TypeError, "numeric"),
    ],
)
def test_bad_images_are_refused_by_name(images, error, match):
    with pytest.raises(error, match=match):
        as_image_tensor(images)


def test_scoring_checks_fit_and_channels():
    detector = TINY["autoencoder"]()
    with pytest.raises(ValueError, match="not fitted"):
        detector.anomaly_map(stripes(1))
    detector.fit(stripes(12))
    with pytest.raises(ValueError, match="channel"):
        detector.anomaly_map(stripes(1, rgb=True))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: PatchFlowDetector(patch_size=12, levels=3), "patch_size"),
        (lambda: PatchFlowDetector(patch_size=64, levels=1), "larger than the images"),
        (lambda: PatchFlowDetector(stride=0), "stride"),
        (lambda: ConvAutoencoderDetector(image_score="median"), "image_score"),
        (lambda: ConvAutoencoderDetector(contamination=0.9), "contamination"),
        (lambda: FastFlowDetector(stages=("stride5",)), "stages"),
        (lambda: FastFlowDetector(smooth_sigma=-1), "smooth_sigma"),
        (lambda: FastFlowDetector(image_score_sigma=-1), "image_score_sigma"),
        (lambda: FastFlowDetector(input_size=4), "input_size"),
        (lambda: FastFlowDetector(input_size=256.0), "input_size"),
        (lambda: FastFlowDetector(reflect_margin=24), "reflect_margin"),  # not a multiple of stride 16
        (lambda: FastFlowDetector(reflect_margin=-16), "reflect_margin"),
        (lambda: FastFlowDetector(input_size=None, reflect_margin=32), "reflect_margin"),  # 32 px images
    ],
)
def test_bad_parameters_are_refused_by_name(build, match):
    if "stages" in match or "smooth" in match or "input_size" in match or "reflect" in match:
        if not backbone_available():
            pytest.skip("EfficientNet-Lite0 not installed")
    with pytest.raises(ValueError, match=match):
        build().fit(stripes(12))


def test_patch_average_map_averages_covering_patches():
    import torch

    x = torch.zeros(2, 1, 10, 10)
    patches, padded = extract_patches(x, 4, 3)
    assert padded == (10, 10) and patches.shape == (2 * 9, 1, 4, 4)
    values = torch.arange(len(patches), dtype=torch.float32)
    maps = patch_average_map(values, 2, padded, (10, 10), 4, 3)
    assert maps.shape == (2, 10, 10)
    assert maps[0, 0, 0] == 0 and maps[1, 9, 9] == values[-1]  # corners: one patch each
    assert maps[0, 3, 3] == pytest.approx(values[:9].reshape(3, 3)[:2, :2].mean())  # four patches overlap
    const = patch_average_map(torch.full((18,), 2.5), 2, padded, (10, 10), 4, 3)
    torch.testing.assert_close(const, torch.full((2, 10, 10), 2.5))


def test_gaussian_smooth_keeps_mass_and_constants():
    import torch

    maps = torch.zeros(1, 21, 21)
    maps[0, 10, 10] = 1.0
    smooth = gaussian_smooth(maps, 2.0)
    assert smooth.sum().item() == pytest.approx(1.0, abs=1e-5) and smooth[0, 10, 10] < 0.1
    torch.testing.assert_close(gaussian_smooth(torch.ones(2, 9, 9), 1.5), torch.ones(2, 9, 9))


@needs_backbone
def test_fastflow_two_class_training_pushes_pasted_anomalies_down():
    train = stripes(24, seed=0)
    negatives, masks = stripes(12, seed=4), np.zeros((12, 32, 32), bool)
    masks[:, 8:20, 8:20] = True
    negatives[masks] = np.clip(negatives[masks].astype(int) + 25, 0, 255).astype(np.uint8)  # subtle: brighter
    params = {"stages": ("stride4", "stride8"), "steps": 4, "max_epochs": 10, "random_state": 0}
    one_class = FastFlowDetector(**params).fit(train)
    two_class = FastFlowDetector(**params).fit(train, negative_images=negatives, negative_masks=masks)
    assert len(two_class.negative_floors_) == 2
    inside = masks
    before, after = one_class.anomaly_map(negatives), two_class.anomaly_map(negatives)
    assert after[inside].mean() > before[inside].mean()
    # normal images keep normal-looking maps: their scores stay above the threshold
    assert (two_class.predict(stripes(8, seed=21)) == 1).mean() >= 0.75


def test_negatives_are_refused_where_unsupported_and_checked():
    with pytest.raises(ValueError, match="normal images only"):
        TINY["autoencoder"]().fit(stripes(12), negative_images=stripes(2), negative_masks=np.zeros((2, 32, 32), bool))
    if backbone_available():
        with pytest.raises(ValueError, match="negative_masks must have shape"):
            TINY["fastflow"]().fit(stripes(12), negative_images=stripes(2), negative_masks=np.zeros((2, 8, 8), bool))
        with pytest.raises(ValueError, match="together"):
            TINY["fastflow"]().fit(stripes(12), negative_images=stripes(2))


@needs_backbone
def test_fastflow_files_saved_before_resizing_existed_keep_their_behaviour(tmp_path):
    """A model file without ``input_size`` / ``reflect_margin`` was fitted and scored at the images' own
    size with no margin; loading it must not switch it to the new defaults."""
    import json

    train, test = stripes(12), stripes(2, seed=3)
    old_style = FastFlowDetector(stages=("stride4",), input_size=None, reflect_margin=0, steps=2, max_epochs=2,
                                 random_state=0).fit(train)
    io.save(old_style, tmp_path / "model")
    config_path = tmp_path / "model" / io.CONFIG_FILE
    config = json.loads(config_path.read_text())
    del config["params"]["input_size"], config["params"]["reflect_margin"]
    config["format_version"] = 1  # files of flowad 0.1 written before those parameters existed
    config["config_sha256"] = io.config_digest(config)
    config_path.write_text(json.dumps(config))
    loaded = io.load(tmp_path / "model")
    assert loaded.input_size is None and loaded.reflect_margin == 0
    np.testing.assert_allclose(loaded.anomaly_map(test), old_style.anomaly_map(test), rtol=1e-5, atol=1e-6)


def test_fastflow_image_score_reads_its_own_blur_of_the_map():
    """Blurred maps with the image score off the unblurred map: the maps are the raw maps blurred, the
    scores those of the same flows without any blur; with equal blurs the score is the map's maximum."""
    import torch

    from flowad.flows import FastFlow2d
    from flowad.models.fastflow.torch_model import FastFlowScoring

    class Tiny(torch.nn.Module):
        strides = (4,)

        def forward(self, x):
            return [torch.nn.functional.avg_pool2d(x.repeat(1, 2, 1, 1), 4)]

    torch.manual_seed(0)
    flows = [FastFlow2d(6, steps=2)]
    x = torch.rand(3, 3, 32, 32)

    def graph(**blurs):
        return FastFlowScoring(Tiny(), flows, input_size=None, reflect_margin=0, **blurs).eval()

    with torch.no_grad():
        raw_score, raw_maps = graph()(x)
        score, maps = graph(smooth_sigma=2.0, image_score_sigma=0.0)(x)
        same_score, same_maps = graph(smooth_sigma=2.0, image_score_sigma=2.0)(x)
    torch.testing.assert_close(maps, gaussian_smooth(raw_maps, 2.0))
    torch.testing.assert_close(score, raw_score)
    torch.testing.assert_close(same_maps, maps)
    torch.testing.assert_close(same_score, -maps.flatten(1).amax(1))
    assert not torch.allclose(same_score, raw_score)  # the blur moves the maximum


@needs_backbone
def test_fastflow_files_saved_before_image_score_sigma_score_their_blurred_map(tmp_path):
    """A format-3 file with ``smooth_sigma`` > 0 read its image score off the blurred map; loading it
    keeps that, so its scores and threshold do not move."""
    import json

    train, test = stripes(12), stripes(2, seed=3)
    fitted = FastFlowDetector(stages=("stride4",), input_size=None, reflect_margin=0, steps=2, max_epochs=2,
                              smooth_sigma=2.0, image_score_sigma=2.0, random_state=0).fit(train)
    io.save(fitted, tmp_path / "model")
    config_path = tmp_path / "model" / io.CONFIG_FILE
    config = json.loads(config_path.read_text())
    del config["params"]["image_score_sigma"]
    config["format_version"] = 3
    config["config_sha256"] = io.config_digest(config)
    config_path.write_text(json.dumps(config))
    loaded = io.load(tmp_path / "model")
    assert loaded.image_score_sigma == 2.0
    np.testing.assert_allclose(loaded.score_samples(test), fitted.score_samples(test), rtol=1e-6)
    np.testing.assert_allclose(loaded.score_samples(test), -aggregate_maps(loaded.anomaly_map(test), "max"),
                               rtol=1e-5)
