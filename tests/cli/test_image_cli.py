"""Image commands end to end (in-process), and the image benchmark runner with its report."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from flowad_studies.image_bench import ImageBenchConfig, run_image_bench
from flowad_studies.image_report import write_image_bench_report

from flowad import io
from flowad.backbones.efficientnet import backbone_available
from flowad.datasets.textures import make_texture_set
from flowad.evaluation.image_metrics import pixel_roc_auc
from tests.browser import external_references, open_page
from tests.cli.runner import flowad


@pytest.fixture(scope="module")
def textures(tmp_path_factory):
    """A gravel folder (32 px crops, 20 training crops, 150 test crops with masks) and an autoencoder on it."""
    root = tmp_path_factory.mktemp("images")
    result = flowad("data", "textures", root / "tex", "--textures", "gravel", "--crop", "32", "--n-train", "20")
    assert result.returncode == 0, result.stderr
    folder = root / "tex" / "gravel"
    assert (folder / "train" / "good").is_dir() and (folder / "ground_truth" / "scratch").is_dir()
    model = root / "model"
    result = flowad("image", "fit", folder, "-m", "autoencoder", "--epochs", "2", "--contamination", "0.4",
                    "-o", model)  # with progress bars: the listener is exercised
    assert result.returncode == 0, result.stderr
    assert json.loads((model / "config.json").read_text())["class"] == "ConvAutoencoderDetector"
    return folder, model


def test_score_writes_joinable_scores_a_page_and_heatmaps(textures, tmp_path):
    folder, model = textures
    heatmaps = tmp_path / "heatmaps"
    result = flowad("image", "score", model, folder, "--heatmaps", heatmaps, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert list(scores.columns) == ["file", "kind", "score", "p_value", "is_anomaly"] and len(scores) == 150
    on_disk = sorted(p.relative_to(folder).as_posix() for p in (folder / "test").rglob("*.png"))
    assert sorted(scores["file"]) == on_disk
    assert (scores["file"].str.split("/").str[1] == scores["kind"]).all()
    detector = io.load(model)
    assert set(scores["is_anomaly"]) <= {0, 1} and 0 < scores["is_anomaly"].sum() < 150
    np.testing.assert_array_equal(scores["is_anomaly"], (scores["p_value"] <= 0.4).astype(int))
    np.testing.assert_array_equal(scores["is_anomaly"], (scores["score"] < detector.offset_).astype(int))
    assert "image ROC-AUC" in result.stdout and "pixel ROC-AUC" in result.stdout and "{" not in result.stdout
    assert len(list(heatmaps.glob("*.png"))) == 150
    page = tmp_path / "report.html"
    text = page.read_text()
    assert external_references(text) == [] and text.count("class='card") == 150
    dom, console = open_page(page)
    assert console == [] and "<h2>Metrics</h2>" in dom and "ConvAutoencoderDetector" in dom


def test_score_without_labels_has_no_metrics_and_no_report_writes_none(textures, tmp_path):
    folder, model = textures
    result = flowad("image", "score", model, folder, "--split", "train", "-o", tmp_path / "train.csv",
                    "--report", tmp_path / "train.html", "-q")
    assert result.returncode == 0, result.stderr
    assert "ROC-AUC" not in result.stdout and "Metrics" not in (tmp_path / "train.html").read_text()
    assert len(pd.read_csv(tmp_path / "train.csv")) == 20
    result = flowad("image", "score", model, folder, "-o", tmp_path / "s.csv", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "train.csv", "train.html"]


@pytest.mark.parametrize("option, target", [
    ("-o", "model/config.json"),
    ("--report", "model/weights.safetensors"),
    ("-o", "folder/test/good/000.png"),
    ("--report", "folder/test/good/new.html"),
    ("--heatmaps", "folder/ground_truth"),
    ("-o", "folder"),
    ("-o", "."),
    ("-o", "folder/train"),
])
def test_score_refuses_to_write_over_or_into_its_inputs(textures, tmp_path, option, target):
    folder, model = textures
    path = {"model": model, "folder": folder}.get(target.split("/")[0], tmp_path) / "/".join(target.split("/")[1:])
    before = path.read_bytes() if path.is_file() else None
    result = flowad("image", "score", model, folder, option, path, "-q", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert option.replace("-o", "--output") in result.stderr
    assert (path.read_bytes() if path.is_file() else None) == before
    assert not (folder / "test" / "good" / "new.html").exists()


def test_fit_passes_backbone_only_to_models_that_have_one(tmp_path, monkeypatch):
    result = flowad("image", "fit", tmp_path, "-m", "patchflow", "--backbone", "efficientnet_lite2", "-o", "m",
                    cwd=tmp_path)
    assert result.returncode == 1
    assert "--backbone is only for models with a feature backbone (fastflow, patchcore), not patchflow" in result.stderr



@pytest.mark.skipif(not backbone_available("lite2"), reason="EfficientNet-Lite2 not installed")
def test_patchcore_on_lite2_from_the_command_line(tmp_path):
    assert flowad("data", "textures", tmp_path, "--textures", "gravel", "--crop", "32", "--n-train", "12",
                  "--seed", "0").returncode == 0
    folder = tmp_path / "gravel"
    result = flowad("image", "fit", folder, "-m", "patchcore", "--backbone", "efficientnet_lite2",
                    "--smooth-sigma", "2", "-o", tmp_path / "m", "-q")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["class"] == "PatchCoreDetector" and config["params"]["backbone"] == "efficientnet_lite2"
    assert config["params"]["smooth_sigma"] == 2.0
    assert config["state"]["backbone_spec_"]["stages"] == ["stride8", "stride16_early"]
    result = flowad("image", "score", tmp_path / "m", folder, "-o", tmp_path / "s.csv", "--no-report", "-q")
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "s.csv")) > 0
    result = flowad("image", "fit", folder, "-m", "patchcore", "--epochs", "3", "-o", tmp_path / "m2")
    assert result.returncode == 1 and "--epochs is only for models trained by gradient descent" in result.stderr
    result = flowad("image", "fit", folder, "-m", "patchcore", "--backbone", "resnet18", "-o", tmp_path / "m3")
    assert result.returncode == 1 and "backbone must be one of" in result.stderr
    assert not (tmp_path / "m3").exists()


def test_fit_refuses_a_negative_map_blur_and_writes_no_model(textures, tmp_path):
    folder, _ = textures
    result = flowad("image", "fit", folder, "-m", "patchcore", "--smooth-sigma", "-1", "-o", tmp_path / "m", "-q")
    assert result.returncode == 1 and "smooth_sigma must be >= 0" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["image", "fit", "missing_folder", "-o", "m"], "not found"),
        (["image", "fit", ".", "-m", "glow3000", "-o", "m"], "--model"),
        (["data", "textures", "out", "--textures", "marble"], "texture"),
    ],
)
def test_image_command_errors_are_one_line(tmp_path, args, message):
    result = flowad(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


def test_image_bench_rows_resume_and_report(tmp_path):
    config = ImageBenchConfig(
        models=["autoencoder", "patchflow"],
        textures=["brick"],
        texture_options={"n_train": 12, "n_test_good": 6, "n_test_defect": 10, "crop": 32},
        digit_sets=["mnist"], digit_classes=[1], digit_max_train=40, digit_max_test=60, timing_images=1,
        params={"autoencoder": {"max_epochs": 2, "base_channels": 8},
                "patchflow": {"max_epochs": 1, "max_patches": 300, "steps": 1, "hidden_channels": 8},
                "digits:patchflow": {"patch_size": 8, "levels": 1}},
    )
    results = run_image_bench(config, tmp_path)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["task"], r["model"]) for r in rows] == [
        ("texture", "autoencoder"), ("texture", "patchflow"), ("texture", "patchflow+blur2"),
        ("texture", "patchflow+blur4"), ("digits", "autoencoder"), ("digits", "patchflow")]  # the autoencoder
    # blurs its maps already
    texture_row = rows[0]
    assert 0 <= texture_row["pixel_roc_auc"] <= 1 and 0 <= texture_row["aupro"] <= 1
    assert set(texture_row["per_kind"]) == {"square_small", "square", "scratch", "texture", "blob"}
    assert texture_row["seconds_per_256px_image"] > 0
    run_image_bench(config, tmp_path)  # resume: nothing left to do
    assert len(results.read_text().splitlines()) == 6
    md, page = write_image_bench_report(tmp_path)
    text = md.read_text()
    assert "pixel_roc_auc" in text and "ratio to autoencoder" in text and "mnist one-class" in text
    assert (tmp_path / "heatmaps_brick.png").is_file() and (tmp_path / "small_defects.png").is_file()
    assert page.read_text().count("data:image/png;base64") == 2
    # without the maps (not kept in git) the grids drawn earlier stay, another run's grid beside them
    shutil.rmtree(tmp_path / "maps")
    shutil.copy(tmp_path / "heatmaps_brick.png", tmp_path / "heatmaps_brick_other_models.png")
    md, page = write_image_bench_report(tmp_path)
    assert "heatmaps_brick_other_models.png" in md.read_text()
    assert page.read_text().count("data:image/png;base64") == 3


def test_image_bench_blur_rows_equal_a_fit_with_that_blur(tmp_path):
    options = {"texture_options": {"n_train": 12, "n_test_good": 6, "n_test_defect": 10, "crop": 32},
               "textures": ["brick"], "digit_sets": [], "timing_images": 0, "models": ["patchflow"]}
    small = {"max_epochs": 1, "max_patches": 300, "steps": 1, "hidden_channels": 8}
    plain = run_image_bench(ImageBenchConfig(**options, map_blur=[4.0], keep_maps=True, params={"patchflow": small}),
                            tmp_path / "plain")
    blurred_config = ImageBenchConfig(**options, map_blur=[], params={"patchflow": {**small, "smooth_sigma": 4}})
    blurred = run_image_bench(blurred_config, tmp_path / "blurred")
    base, variant = [json.loads(line) for line in plain.read_text().splitlines()]
    assert base["pixel_roc_auc"] != variant["pixel_roc_auc"]  # the blur changes the maps
    fitted = json.loads(blurred.read_text().splitlines()[0])
    assert variant["model"] == "patchflow+blur4" and fitted["model"] == "patchflow"
    for key in ("image_roc_auc", "pixel_roc_auc", "aupro"):
        assert abs(variant[key] - fitted[key]) < 1e-6, key
    assert variant["per_kind"]["blob"]["pixel_roc_auc"] == pytest.approx(fitted["per_kind"]["blob"]["pixel_roc_auc"])
    kept = np.load(tmp_path / "plain" / "maps" / "brick__patchflow_all.npz")  # every test map, for later variants
    assert kept["maps"].shape == (16, 32, 32) and kept["image_scores"].shape == (16,)
    _, test = make_texture_set("brick", random_state=0, **options["texture_options"])
    assert pixel_roc_auc(test.masks, kept["maps"]) == pytest.approx(base["pixel_roc_auc"], abs=1e-6)


def test_image_bench_adds_a_map_maximum_row_for_patchcore(tmp_path):
    from tests.backbones.tiny import TinyBackbone

    config = ImageBenchConfig(
        models=["patchcore"], textures=["brick"], digit_sets=[], timing_images=0,
        texture_options={"n_train": 8, "n_test_good": 6, "n_test_defect": 10, "crop": 32},
        params={"patchcore": {"backbone": TinyBackbone(), "input_size": None, "reflect_margin": 8, "max_bank": 50,
                              "max_patches": 500}})
    base, variant = [json.loads(line) for line in run_image_bench(config, tmp_path).read_text().splitlines()]
    assert (base["model"], variant["model"]) == ("patchcore", "patchcore+mapmax")
    assert variant["pixel_roc_auc"] == base["pixel_roc_auc"]  # the same maps
    assert variant["image_score"] == "map maximum"


def test_map_maximum_row_scores_images_by_their_map_maximum():
    from types import SimpleNamespace

    from flowad_studies.image_bench import _map_max_row

    rng = np.random.default_rng(0)
    kinds = ["good"] * 6 + ["blob"] * 6
    masks = np.zeros((12, 8, 8), dtype=bool)
    masks[6:, 2:4, 2:4] = True
    maps = rng.uniform(0, 1, (12, 8, 8)).astype(np.float32)
    maps[6:, 2:4, 2:4] += 2.0  # defects carry the largest values: the map maximum separates perfectly
    test = SimpleNamespace(labels=np.array([0] * 6 + [1] * 6), masks=masks, kinds=kinds)
    base = {"task": "texture", "dataset": "brick", "subset": "", "model": "patchcore@efficientnet_lite2",
            "fit_seconds": 1.0, "score_seconds": 2.0}
    row = _map_max_row(base, test, maps)
    assert row["model"] == "patchcore+mapmax@efficientnet_lite2" and row["variant_of"] == base["model"]
    assert row["image_roc_auc"] == 1.0 and row["per_kind"]["blob"]["image_roc_auc"] == 1.0


def test_image_bench_model_names_can_carry_a_backbone():
    from flowad_studies.image_bench import _model

    config = ImageBenchConfig(params={"patchcore": {"max_bank": 10}, "patchcore@efficientnet_lite2": {"max_bank": 20}})
    detector = _model(config, "patchcore@efficientnet_lite2", "texture")
    assert detector.backbone == "efficientnet_lite2" and detector.max_bank == 20
    assert _model(config, "patchcore", "texture").max_bank == 10
    with pytest.raises(ValueError, match="with @BACKBONE"):
        _model(config, "resnet@x", "texture")
    with pytest.raises(ValueError, match="invalid parameters"):
        _model(config, "patchflow@efficientnet_lite2", "texture")  # no backbone parameter


def test_image_bench_measures_a_blurring_fastflow_against_its_unblurred_maps(tmp_path):
    """FastFlow blurring its maps (image score off the unblurred map) gets a +blur0 row from the same fit
    scored without the blur: it equals a fit without the blur, and shares the image metrics of the default."""
    from tests.backbones.tiny import TinyBackbone

    def config(**fastflow):
        return ImageBenchConfig(
            models=["fastflow"], textures=["brick"], digit_sets=[], timing_images=0, map_blur=[2.0], keep_maps=True,
            texture_options={"n_train": 12, "n_test_good": 6, "n_test_defect": 10, "crop": 32},
            params={"fastflow": {"backbone": TinyBackbone(), "input_size": None, "reflect_margin": 8, "steps": 1,
                                 "max_epochs": 2, **fastflow}})

    rows = [json.loads(line) for line in
            run_image_bench(config(smooth_sigma=2.0), tmp_path / "blurring").read_text().splitlines()]
    default, unblurred, blurred = rows
    assert [r["model"] for r in rows] == ["fastflow", "fastflow+blur0", "fastflow+blur2"]
    plain = json.loads(run_image_bench(config(smooth_sigma=0.0, image_score_sigma=0.0), tmp_path / "plain")
                       .read_text().splitlines()[0])
    for key in ("image_roc_auc", "pixel_roc_auc", "aupro"):
        assert unblurred[key] == pytest.approx(plain[key], abs=1e-6), key
    assert default["image_roc_auc"] == pytest.approx(unblurred["image_roc_auc"], abs=1e-9)  # score off the raw map
    assert default["pixel_roc_auc"] == pytest.approx(blurred["pixel_roc_auc"], abs=1e-6)  # maps blurred by 2 px
    assert default["pixel_roc_auc"] != unblurred["pixel_roc_auc"]
    kept = np.load(tmp_path / "blurring" / "maps" / "brick__fastflow_all.npz")["maps"]
    _, test = make_texture_set("brick", random_state=0, n_train=12, n_test_good=6, n_test_defect=10, crop=32)
    assert pixel_roc_auc(test.masks, kept) == pytest.approx(unblurred["pixel_roc_auc"], abs=1e-6)  # kept unblurred
