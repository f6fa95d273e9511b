"""Functions of benchmark scripts that the import test cannot vouch for: they read fitted models or
result rows whose shapes change with the library."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

from flowad.models import FlowDetector

ROOT = Path(__file__).parents[2] / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_score_variants_scores_one_fitted_flow():
    variants = _script("score_variants")
    rng = np.random.default_rng(0)
    X_train, X_test = rng.normal(size=(300, 3)), np.r_[rng.normal(size=(40, 3)), rng.normal(6, 1, size=(10, 3))]
    det = FlowDetector(max_epochs=3, random_state=0).fit(X_train)
    train = variants.components(det, X_train)
    np.testing.assert_allclose(train["loglik"], det.log_likelihood(X_train), rtol=1e-4)
    knn = NearestNeighbors(n_neighbors=5).fit(train["z"])
    input_knn = NearestNeighbors(n_neighbors=5).fit(train["inputs"])
    train["r_k"] = input_knn.kneighbors(train["inputs"], n_neighbors=6)[0][:, -1]
    scores = variants.scores(det, X_test, train, knn, input_knn)
    assert {"nll", "latent_knn", "input_knn", "hybrid_z", "hybrid_logdens"} <= set(scores)
    for name, values in scores.items():
        assert values.shape == (50,), name
        # the far rows (the last ten) are less normal than the near ones by every score
        assert values[40:].mean() < values[:40].mean(), name


def _ceiling_rows(texture: str) -> list[dict]:
    rows = []
    for tap, value in (("stride4", 0.80), ("stride8", 0.90)):
        row = {"texture": texture, "tap": tap}
        for label, shift in (("raw", 0.0), ("blur4", 0.02)):
            row[f"{label}_pixel_roc_auc"] = value + shift
            for kind in ("blob", "scratch", "square", "square_small", "texture"):
                row[f"{label}_pixel_{kind}_only"] = value - 0.1 + shift
        rows.append(row)
    return rows


def test_ceiling_comparison_counts_models_on_the_same_backbone():
    ceiling = _script("texture_feature_ceiling")
    taps = pd.DataFrame(_ceiling_rows("brick"))
    per_kind = {"blob": {"pixel_roc_auc": 0.85}}
    models = pd.DataFrame([
        {"model": "fastflow", "dataset": "brick", "pixel_roc_auc": 0.95, "per_kind": per_kind},
        {"model": "fastflow@efficientnet_lite2", "dataset": "brick", "pixel_roc_auc": 0.5, "per_kind": per_kind},
    ])
    table = ceiling.compare_with_models(taps, models, "efficientnet_lite0").set_index("kind")
    assert "fastflow@efficientnet_lite2" not in table  # another backbone's model is left out
    assert table.loc["all", "ceiling"] == pytest.approx(0.92)  # the best tap, blurred
    assert table.loc["all", "best tap"] == "stride8"
    assert table.loc["all", "fastflow - ceiling"] == pytest.approx(0.03)
    assert table.loc["blob", "fastflow - ceiling"] == pytest.approx(0.85 - 0.82)
    assert np.isnan(table.loc["scratch", "fastflow"])  # a kind the model's row lacks stays empty


def test_weight_sweep_reads_saved_scores(tmp_path):
    variants = _script("score_variants")
    y = np.r_[np.zeros(8, int), np.ones(2, int)]
    nll = np.r_[np.linspace(0, 1, 8), 0.5, 0.6]  # the likelihood alone ranks the anomalies in the middle
    knn = np.r_[np.zeros(8), -10.0, -10.0]  # the neighbour term puts them last
    for name in ("cardio", "wine"):
        np.savez(tmp_path / f"{name}__0.npz", y=y, nll=nll, hybrid_logdens=nll + knn)
    table = variants.weight_sweep(tmp_path).set_index("weight of the k-NN term")
    assert table.loc[0.0, "all 2"] == pytest.approx(7 / 16)  # normal rows above each anomaly: 4 and 3 of 8
    assert table.loc[1.0, "all 2"] == pytest.approx(1.0)
    assert table.loc[1.0, "1 development sets"] == pytest.approx(1.0)  # cardio is one of the eight


def _image_run(folder: Path, seed: int, values: dict[str, float]) -> Path:
    import json

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"seed": seed}))
    rows = [{"task": "texture", "dataset": "brick", "subset": "", "model": model, "image_roc_auc": v,
             "pixel_roc_auc": v - 0.1, "aupro": v - 0.2, "per_kind": {"blob": {"pixel_roc_auc": v - 0.3}}}
            for model, v in values.items()]
    rows.append({"task": "digits", "dataset": "mnist", "subset": "1", "model": "fastflow", "image_roc_auc": 0.5})
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_image_seeds_averages_seeds_and_names_the_better_model(tmp_path):
    seeds = _script("image_seeds")
    runs = [_image_run(tmp_path / "a", 0, {"fastflow": 0.9, "patchcore": 0.8}),
            _image_run(tmp_path / "b", 1, {"fastflow": 0.7, "patchcore": 0.9, "autoencoder": 0.6})]
    frame = seeds.combine(runs)
    assert len(frame) == 5  # texture rows only
    table = seeds.summary(frame).set_index("model")
    assert table.loc["fastflow", "image_roc_auc_mean"] == pytest.approx(0.8)
    assert table.loc["fastflow", "image_roc_auc_min"] == pytest.approx(0.7)
    assert table.loc["patchcore", "pixel:blob_mean"] == pytest.approx(0.55)
    assert seeds.verdict(seeds.summary(frame), "image_roc_auc") == {"brick": "patchcore"}  # 0.85 against 0.80
    text = seeds.markdown(frame)
    assert "0.800 (0.700-0.900)" in text and "1 seed(s)" in text  # the autoencoder ran at one seed only
    with pytest.raises(ValueError, match="seed 0"):
        seeds.combine([runs[0], _image_run(tmp_path / "c", 0, {"fastflow": 0.5})])


def test_map_postprocessing_measures_variants_of_kept_maps(tmp_path):
    from flowad.datasets.textures import make_texture_set
    from flowad.evaluation.image_metrics import pixel_roc_auc

    post = _script("map_postprocessing")
    options = {"n_train": 4, "n_test_good": 6, "n_test_defect": 10, "crop": 32}
    (tmp_path / "maps").mkdir()
    (tmp_path / "config.json").write_text(f'{{"seed": 3, "texture_options": {options!r}}}'.replace("'", '"'))
    _, test = make_texture_set("brick", random_state=3, **options)
    maps = test.masks + np.random.default_rng(0).normal(0, 0.5, test.masks.shape)  # noisy masks
    np.savez_compressed(tmp_path / "maps" / "brick__fastflow_all.npz", maps=maps.astype(np.float32),
                        image_scores=np.zeros(len(maps)))
    table = post.run([tmp_path], "fastflow")
    assert set(table.variant) == {"raw", "raw+blur2", "raw+blur4", *(f"blur{s:g}" for s in post.BLURS)}
    raw = table.set_index("variant").loc["raw"]
    assert raw.seed == 3 and raw.pixel_roc_auc == pytest.approx(pixel_roc_auc(test.masks, maps), abs=1e-6)
    assert table.set_index("variant").loc["blur1", "pixel_roc_auc"] > raw.pixel_roc_auc  # the blur removes noise
    assert "## brick" in post.report(table) and "| raw |" in post.report(table)


def test_large_table_schedule_restores_the_batch_rule_after_the_previous_schedule():
    schedule = _script("large_table_schedule")
    from flowad.models.tabular_flow import options

    assert [schedule.previous_batch(n) for n in (10_000, 100_000, 300_000, 10**7)] == [256, 512, 1024, 2048]
    with schedule.schedule_of("previous") as model:
        assert options.auto_batch_size(100_000) == 512
        config = model._training_config(100_000)
        assert (config.batch_size, config.lr_schedule) == (512, "constant")
    assert options.auto_batch_size(100_000) == 2048
    with schedule.schedule_of("current") as model:
        assert model._training_config(100_000).lr_schedule == "cosine"


def test_fit_cost_sets_the_step_budget_for_its_block_only():
    cost = _script("fit_cost")
    from flowad.models.tabular_flow import options

    default = FlowDetector()._training_config(1_000_000).max_steps
    with cost.row_budget(1_250_000):
        assert FlowDetector()._training_config(1_000_000).max_steps == 611
    assert FlowDetector()._training_config(1_000_000).max_steps == default == 2442
    assert options.ROW_BUDGET == 5_000_000
    assert cost.step_milliseconds(64, "fused_adam", steps=2) > 0
    frame = pd.DataFrame([{"part": "budget", "case": "iforest", "fit_seconds": 2.0, "batch": None},
                          {"part": "budget", "case": "maf budget 10", "row_budget": 10, "steps": 1, "fit_seconds": 4.0,
                           "heldout_log_likelihood": -1.5, "ratio_to_iforest": 2.0, "batch": None},
                          {"part": "step", "case": "adam", "batch": 256, "milliseconds_per_step": 5.0},
                          {"part": "step", "case": "fused_adam", "batch": 256, "milliseconds_per_step": 4.0}])
    page = cost.report(frame, {"cpu_count": 2, "platform": "test"})
    assert "| flow | 10 | 1 | 4.0 | -1.500 | 2.0x |" in page and "| 256 | 5.000 | 4.000 |" in page


def test_hybrid_terms_baseline_is_the_shipped_hybrid_score():
    hybrid_terms = _script("hybrid_terms")
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(300, 3))
    X_test = np.vstack([rng.normal(size=(39, 3)), np.full((1, 3), 10.0)])  # the last row far out
    det = FlowDetector(score_type="hybrid", max_epochs=3, random_state=0)._fit_uncalibrated(X_train)
    parts = hybrid_terms.score_parts(det, X_train, X_test)
    assert parts["in_te"].shape == (40, hybrid_terms.K_KEPT)
    np.testing.assert_allclose(hybrid_terms.score(parts), det.score_samples(X_test), rtol=1e-9)
    # the latent and standardised terms push the far row further down, and no row up past it
    both = hybrid_terms.score(parts, b=1.0, c=1.0)
    assert both[-1] < hybrid_terms.score(parts)[-1]
    assert both.argmin() == 39


def test_binary_scores_charge_a_rare_value_as_the_models_say():
    binary = _script("binary_scores")
    train = np.zeros((100, 2))
    train[:10, 0] = 1  # column 0: p = 0.1; column 1: always 0
    s = binary.simple_scores(train, np.array([[0.0, 0.0], [1.0, 0.0]]))
    # independent Bernoulli columns: the rare value costs log(0.1) - log(0.9) nats
    assert s["independent"][0] - s["independent"][1] == pytest.approx(np.log(0.9) - np.log(0.1), rel=1e-6)
    # squared standardised distance: (1 - p) / p - p / (1 - p) for the same change
    assert s["diagonal_gaussian"][0] - s["diagonal_gaussian"][1] == pytest.approx(0.9 / 0.1 - 0.1 / 0.9, rel=1e-6)
    assert s["gaussian"].shape == (2,) and s["gaussian"][0] > s["gaussian"][1]
