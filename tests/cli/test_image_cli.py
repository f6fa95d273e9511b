"""Image commands end to end (subprocesses), and the image benchmark runner with its report."""

import json

import pandas as pd
import pytest
from flowad_studies.image_bench import ImageBenchConfig, run_image_bench
from flowad_studies.image_report import write_image_report

from tests.cli.runner import flowad


def test_textures_fit_score_heatmaps(tmp_path):
    result = flowad("data", "textures", tmp_path / "tex", "--textures", "gravel", "--crop", "32", "--n-train", "20")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "tex" / "gravel"
    assert (folder / "train" / "good").is_dir() and (folder / "ground_truth" / "scratch").is_dir()

    model = tmp_path / "model"
    result = flowad("image", "fit", folder, "-m", "autoencoder", "--epochs", "2", "-o", model, "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads((model / "config.json").read_text())["class"] == "ConvAutoencoderDetector"

    scores_csv, heatmaps = tmp_path / "scores.csv", tmp_path / "heatmaps"
    result = flowad("image", "score", model, folder, "-o", scores_csv, "--heatmaps", heatmaps, "-q")
    assert result.returncode == 0, result.stderr
    scores = pd.read_csv(scores_csv, dtype={"name": str})
    assert list(scores.columns) == ["kind", "name", "score", "label"] and len(scores) == 150
    assert "pixel_roc_auc" in result.stdout
    assert len(list(heatmaps.glob("*.png"))) == 150


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
        ("texture", "autoencoder"), ("texture", "patchflow"), ("digits", "autoencoder"), ("digits", "patchflow")]
    texture_row = rows[0]
    assert 0 <= texture_row["pixel_roc_auc"] <= 1 and 0 <= texture_row["aupro"] <= 1
    assert set(texture_row["per_kind"]) == {"square_small", "square", "scratch", "texture", "blob"}
    assert texture_row["seconds_per_256px_image"] > 0
    run_image_bench(config, tmp_path)  # resume: nothing left to do
    assert len(results.read_text().splitlines()) == 4
    md, page = write_image_report(tmp_path)
    text = md.read_text()
    assert "pixel_roc_auc" in text and "ratio to autoencoder" in text and "mnist one-class" in text
    assert (tmp_path / "heatmaps_brick.png").is_file() and (tmp_path / "small_defects.png").is_file()
    assert page.read_text().count("data:image/png;base64") == 2
