"""Synthetic anomalies: the patch flow sampler, pasting with exact masks, the ``flowad synth`` commands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2

from flowad import io
from flowad.datasets import load_image_folder, make_texture_set, write_image_folder
from flowad.synth import (
    PatchSampler,
    feather,
    paste_patches,
    random_patches,
    resize_patches,
    simple_anomalies,
    synthetic_anomalies,
)
from tests.cli.runner import flowad

torch.set_num_threads(1)

SMALL = {"patch_size": 8, "region_size": (8, 16), "max_patches": 2000, "transforms": 2,
         "hidden_features": (32, 32), "max_epochs": 15, "device": "cpu", "random_state": 0}  # fmt: skip


@pytest.fixture(scope="module")
def brick() -> np.ndarray:
    train, _ = make_texture_set("brick", n_train=20, n_test_good=0, n_test_defect=0, crop=32)
    return train.images


@pytest.fixture(scope="module")
def sampler(brick) -> PatchSampler:
    return PatchSampler(**SMALL).fit(brick)


def test_random_patches_are_resized_crops(brick):
    rng = np.random.default_rng(0)
    exact = random_patches(brick[:1], 5, 8, (8, 8), rng)
    image = brick[0]
    windows = np.lib.stride_tricks.sliding_window_view(image, (8, 8))
    for patch in exact:  # with region side == patch side every patch is a crop of the image
        assert (windows == patch).all(axis=(2, 3)).any()
    multi = random_patches(brick, 50, 8, (8, 32), rng)
    assert multi.shape == (50, 8, 8) and multi.dtype == np.uint8
    rgb = random_patches(np.repeat(brick[..., None], 3, axis=-1), 4, 6, (6, 20), rng)
    assert rgb.shape == (4, 6, 6, 3) and (rgb[..., 0] == rgb[..., 2]).all()


def test_temperature_lowers_likelihood(sampler):
    means = []
    for temperature in (1.0, 1.5, 2.0):
        patches, ll = sampler.sample(300, "temperature", temperature=temperature, random_state=1)
        assert patches.shape == (300, 8, 8) and patches.dtype == np.uint8
        np.testing.assert_allclose(ll, sampler.log_likelihood(patches))
        means.append(ll.mean())
    assert means[0] > means[1] > means[2]
    assert means[0] - means[2] > 20  # nats per patch
    # at T=1 the samples look like the training patches in likelihood (a trained flow, not noise)
    assert abs(means[0] - sampler.train_log_likelihood_.mean()) < means[0] - means[2]


@pytest.mark.parametrize("band", [(0.001, 0.05), "far", (0.2, 0.6)])
def test_rejection_samples_lie_in_the_band(sampler, band):
    patches, ll = sampler.sample(60, "rejection", band=band, random_state=2)
    assert patches.shape == (60, 8, 8) and len(ll) == 60
    quantiles = {"far": (0.0, 0.001)}.get(band, band)
    low, high = np.quantile(sampler.train_log_likelihood_, quantiles)
    if quantiles[0] == 0:
        low = -np.inf
    assert (ll >= low).all() and (ll <= high).all()
    np.testing.assert_allclose(ll, sampler.log_likelihood(patches))


def test_rejection_gives_a_clear_error_when_the_band_stays_empty(sampler):
    with pytest.raises(ValueError, match=r"band \(0.9999, 1.0\): only \d+ of 50 patches"):
        sampler.sample(50, "rejection", band=(0.9999, 1.0), temperature=3.0, max_tries=2, random_state=0)


def test_tail_latent_norms_exceed_the_chi2_quantile(sampler):
    d = sampler.n_features_
    z = sampler.draw_latent(400, "tail", quantile=0.99, random_state=3)
    cut = chi2.ppf(0.99, d)
    assert z.shape == (400, d) and ((z**2).sum(axis=1) > cut).all()
    assert np.median((z**2).sum(axis=1)) < chi2.ppf(0.9999, d)  # the tail, not arbitrarily far
    patches, ll = sampler.sample(200, "tail", quantile=0.99, random_state=3)
    codes = sampler.latent_codes(patches)  # after rounding to 8 bits and clipping
    assert ((codes**2).sum(axis=1) > cut).mean() > 0.8
    assert ll.mean() < np.median(sampler.train_log_likelihood_)


def test_patches_the_inverse_flow_sends_out_of_range_are_drawn_again(sampler):
    strict, _ = sampler.sample(300, temperature=3.0, max_clipped=0.0, random_state=1)
    loose, _ = sampler.sample(300, temperature=3.0, max_clipped=1.0, random_state=1)
    assert np.isin(strict, (0, 255)).mean() < 0.005 < 0.05 < np.isin(loose, (0, 255)).mean()
    with pytest.raises(ValueError, match="max_clipped=0.0: only"):
        sampler.sample(50, temperature=50.0, max_clipped=0.0, max_tries=1, random_state=0)


def _images(rgb: bool) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.integers(0, 256, (6, 40, 50, 3) if rgb else (6, 40, 50), dtype=np.uint8)


@pytest.mark.parametrize("rgb", [False, True])
def test_hard_paste_mask_is_exactly_the_pasted_square(rgb):
    images = _images(rgb)
    rng = np.random.default_rng(6)
    patches = rng.integers(0, 256, (6, 8, 8, 3) if rgb else (6, 8, 8), dtype=np.uint8)
    out, masks = paste_patches(images, patches, rng, size=(4, 30))
    assert out.shape == images.shape and masks.shape == (6, 40, 50)
    changed = (out != images).any(axis=-1) if rgb else out != images
    for i in range(len(images)):
        assert not (changed[i] & ~masks[i]).any()  # changed pixels lie inside the mask
        rows, cols = np.flatnonzero(masks[i].any(1)), np.flatnonzero(masks[i].any(0))
        side = len(rows)
        assert len(cols) == side and 4 <= side <= 30 and masks[i].sum() == side**2  # one filled square
        square = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        expected = np.clip(np.rint(resize_patches(patches[i][None], side)[0]), 0, 255)
        np.testing.assert_array_equal(out[i][square], expected)  # unchanged mask pixels: by coincidence
    assert changed.sum() > 0.9 * masks.sum()


def test_soft_paste_mask_is_where_the_patch_dominates():
    images = np.zeros((5, 40, 40), np.uint8)
    patches = np.full((5, 8, 8), 255, np.uint8)
    out, masks = paste_patches(images, patches, 0, size=(6, 30), blend="soft", n_per_image=1)
    changed = out != images  # alpha > 0 on the whole pasted square
    assert masks.any(axis=(1, 2)).all()
    assert not (masks & ~changed).any()  # mask inside the pasted square
    assert (out[masks] >= 128).all() and (out[changed & ~masks] <= 128).all()
    assert (changed & ~masks).any()  # the feathered rim changes pixels outside the mask
    alpha = feather(8)
    assert alpha.max() == 1 and alpha.min() > 0 and (alpha > 0.5).sum() == 36  # central 6 x 6


def test_synthetic_and_simple_anomalies(sampler, brick):
    made = synthetic_anomalies(brick, sampler, 7, "temperature", 0, size=(8, 16), n_per_image=(1, 2))
    assert len(made) == 7 and set(made.kinds) == {"flow_temperature"} and (made.labels == 1).all()
    assert made.images.shape == (7, 32, 32) and made.masks.any(axis=(1, 2)).all()
    far = synthetic_anomalies(brick, sampler, 3, "far", 1, blend="soft")
    assert set(far.kinds) == {"flow_far"} and far.masks.any(axis=(1, 2)).all()
    for kind in ("square", "scratch", "texture"):
        simple = simple_anomalies(brick, kind, 4, np.random.default_rng(2))
        assert set(simple.kinds) == {kind} and len(simple) == 4
        originals = np.array([[(brick == img).all(axis=(1, 2)) for img in simple.images]])
        assert not originals.any()  # every image was changed


def test_save_load_gives_identical_samples(sampler, tmp_path):
    io.save(sampler, tmp_path / "sampler")
    loaded = io.load(tmp_path / "sampler")
    assert isinstance(loaded, PatchSampler) and loaded.patch_shape == (8, 8)
    for method, options in (("temperature", {"temperature": 1.7}), ("rejection", {"band": "boundary"})):
        a, ll_a = sampler.sample(40, method, random_state=11, **options)
        b, ll_b = loaded.sample(40, method, random_state=11, **options)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(ll_a, ll_b)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda s: s.sample(5, "hot"), "method"),
        (lambda s: s.sample(5, "temperature", temperature=0), "temperature"),
        (lambda s: s.sample(5, "temperature", temperature=-1.5), "temperature"),
        (lambda s: s.sample(5, "tail", temperature=2.0), "temperature"),
        (lambda s: s.sample(5, "tail", quantile=1.0), "quantile"),
        (lambda s: s.sample(5, "rejection", band=(0.05, 0.001)), "band"),
        (lambda s: s.sample(5, "rejection", band=(0.1, 0.1)), "band"),
        (lambda s: s.sample(5, "rejection", band="middle"), "band"),
        (lambda s: s.sample(-1), "n"),
        (lambda s: s.sample(5, max_clipped=1.5), "max_clipped"),
        (lambda s: s.sample(5, max_tries=0), "max_tries"),
        (lambda s: s.decode(np.zeros((2, 3))), "z"),
        (lambda s: s.log_likelihood(np.zeros((2, 4, 4))), "patches"),
        (lambda s: PatchSampler(patch_size=1).fit(np.zeros((2, 9, 9), np.uint8)), "patch_size"),
        (lambda s: PatchSampler(region_size=(9, 3)).fit(np.zeros((2, 9, 9), np.uint8)), "region_size"),
        (lambda s: PatchSampler().fit(np.zeros((2, 9, 9))), "images"),
        (lambda s: paste_patches(_images(False), np.zeros((1, 8, 8), np.uint8), 0, blend="hard"), "blend"),
        (lambda s: paste_patches(_images(False), np.zeros((1, 8, 8), np.uint8), 0, size=(0, 3)), "size"),
        (lambda s: paste_patches(_images(True), np.zeros((1, 8, 8), np.uint8), 0), "patches"),
        (lambda s: synthetic_anomalies(_images(False), s, 2, "hot"), "method"),
        (lambda s: simple_anomalies(_images(False), "stain", 2), "kind"),
    ],
)
def test_bad_input_gives_one_line_errors(sampler, call, message):
    with pytest.raises(ValueError) as info:
        call(sampler)
    text = str(info.value)
    assert message in text and "\n" not in text


def test_cli_fit_then_paste_writes_a_loadable_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    train, test = make_texture_set("gravel", n_train=10, n_test_good=4, n_test_defect=0, crop=32)
    folder = write_image_folder(tmp_path / "gravel", train=train, test=test)
    model, out = tmp_path / "sampler", tmp_path / "synth"
    result = flowad("synth", "fit", folder, "-o", model, "--patch-size", "4", "--region-size", "4,8",
                    "--max-patches", "400", "--transforms", "1", "--hidden", "16", "--epochs", "3", "-q")
    assert result.returncode == 0, result.stderr
    result = flowad("synth", "paste", model, folder, "-o", out, "--n", "3", "--method", "temperature,far,square",
                    "--paste-size", "4,12", "--blend", "soft", "--max-clipped", "0.3", "-q")
    assert result.returncode == 0, result.stderr
    written = load_image_folder(out, "test")
    assert sorted(set(written.kinds)) == ["flow_far", "flow_temperature", "good", "square"]
    assert written.kinds.count("good") == 4 and written.kinds.count("flow_far") == 3
    assert written.masks[written.labels == 1].any(axis=(1, 2)).all()
    assert len(load_image_folder(out, "train")) == 10

    again = flowad("synth", "paste", model, folder, "-o", out, "--n", "2", "-q")
    assert again.returncode == 1 and "--overwrite" in again.stderr and "Traceback" not in again.stderr
    bad = flowad("synth", "paste", model, folder, "-o", tmp_path / "x", "--method", "rainbow", "-q")
    assert bad.returncode == 1 and "--method" in bad.stderr and "Traceback" not in bad.stderr

    # a U-Net trained on pasted flow samples only, then scored like any image model
    unet = tmp_path / "unet"
    result = flowad("synth", "segment", model, folder, "-o", unet, "--n", "4", "--paste-size", "4,12", "--method",
                    "temperature,far", "--max-clipped", "0.3",
                    "--epochs", "2", "-q")
    assert result.returncode == 0, result.stderr
    assert "U-Net" in result.stdout and (unet / "config.json").is_file()
    result = flowad("image", "score", unet, out, "-o", tmp_path / "scores.csv", "--heatmaps", tmp_path / "maps", "-q")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "maps").glob("*.png"))) == len(written)
    bad = flowad("synth", "segment", model, folder, "-o", tmp_path / "y", "--method", "square", "-q")
    assert bad.returncode == 1 and "--method" in bad.stderr and "Traceback" not in bad.stderr
