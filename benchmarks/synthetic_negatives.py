"""What do synthetic anomalies from a flow's low-likelihood region buy on *real* defects?

Per texture of the built-in defect set and per seed, one patch sampler (MAF on normal 8x8 patches)
draws low-likelihood patches that are pasted into the normal training crops with exact masks. Then:

- ``FastFlow one-class``: trained on the normal crops only;
- ``FastFlow two-class``: the same, fine-tuned two-class on 100 crops with temperature-1.5 patches
  (``fit(..., negative_images, negative_masks)``, Chiu & Lai's bounded loss);
- ``U-Net (synthetic only)``: a segmenter trained on the normal crops, the same 100 crops and 100
  more with "far" rejection samples; it never sees a real defect.

All three are scored on the texture set's real defect kinds (squares, scratches, foreign texture,
blobs). Writes ``synthetic_negatives.jsonl`` / ``.md`` and heatmap grids under ``--out``.

Usage: python benchmarks/synthetic_negatives.py --textures brick --seeds 0 --out docs/results/synth
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from flowad_studies.image_bench import per_kind_metrics, write_example_maps
from flowad_studies.image_report import heatmap_grid

from flowad.datasets.textures import make_texture_set
from flowad.evaluation.image_metrics import evaluate_image_detector_outputs
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog, read_rows
from flowad.models import FastFlowDetector, UNetSegmenter
from flowad.synth import PatchSampler, synthetic_anomalies

MODELS = ("FastFlow one-class", "FastFlow two-class", "U-Net (synthetic only)")
#: FastFlow as the committed results under docs/results/synth were measured: crops at their own
#: size, no mirrored margin, the 112-channel stride-16 stage (the detector's defaults since are
#: input_size=256, reflect_margin=32 and the 80-channel "stride16_early").
FASTFLOW = {"input_size": None, "reflect_margin": 0, "stages": ("stride4", "stride8", "stride16")}
METRICS = ["image_roc_auc", "pixel_roc_auc", "aupro"]


def _negatives(train_images: np.ndarray, sampler: PatchSampler, n: int, seed: int):
    temperature = synthetic_anomalies(train_images, sampler, n, "temperature", rng=seed, temperature=1.5)
    far = synthetic_anomalies(train_images, sampler, n, "far", rng=seed + 1000)
    return temperature, far


def _fitted(model: str, seed: int, train, temperature, far):
    if model == "FastFlow one-class":
        return FastFlowDetector(**FASTFLOW, random_state=seed).fit(train.images)
    if model == "FastFlow two-class":
        return FastFlowDetector(**FASTFLOW, random_state=seed).fit(train.images, negative_images=temperature.images,
                                                       negative_masks=temperature.masks)  # fmt: skip
    return UNetSegmenter(random_state=seed).fit(
        train.images, negative_images=np.concatenate([temperature.images, far.images]),
        negative_masks=np.concatenate([temperature.masks, far.masks]))  # fmt: skip


def run(texture: str, seed: int, n_negatives: int, models: list[str], maps_dir: Path, log: ResultsLog) -> None:
    """Fit and score ``models`` on one texture and seed; one row per model into ``log``."""
    train, test = make_texture_set(texture, random_state=seed)
    start = time.perf_counter()
    sampler = PatchSampler(random_state=seed).fit(train.images)
    temperature, far = _negatives(train.images, sampler, n_negatives, seed)
    sampler_s = time.perf_counter() - start
    for model in models:
        start = time.perf_counter()
        detector = _fitted(model, seed, train, temperature, far)
        fit_s = time.perf_counter() - start
        scores, maps = detector.score_and_map(test.images)
        metrics = evaluate_image_detector_outputs(test.labels, test.masks, -scores, maps).as_dict()
        row = {"texture": texture, "seed": seed, "model": model, **metrics, "fit_seconds": fit_s,
               "sampler_seconds": sampler_s, "per_kind": per_kind_metrics(test, -scores, maps)}
        log.append(row)
        if seed == 0:
            write_example_maps(maps_dir / f"{texture}__{model}.npz", test, maps)
        print(texture, seed, model, {k: round(metrics[k], 3) for k in METRICS}, f"fit {fit_s:.0f}s", flush=True)


def write_summary(rows: pd.DataFrame, out: Path, n_negatives: int, threads: int) -> None:
    overall = rows.groupby(["texture", "model"], sort=False)[METRICS].agg(["mean", "std"])
    overall.columns = [f"{m} {s}" for m, s in overall.columns]
    overall = overall.reset_index()
    kinds = pd.DataFrame([{"texture": r.texture, "model": r.model, "seed": r.seed, "kind": k, **v}
                          for r in rows.itertuples() for k, v in r.per_kind.items()])
    with_aupro = kinds.dropna(subset=["aupro"]).groupby("model", sort=False).seed.unique()
    aupro_seeds = "; ".join(f"{m}: seeds {sorted(v.tolist())}" for m, v in with_aupro.items())
    per_kind = kinds.pivot_table(index=["texture", "kind"], columns="model", values="aupro", sort=False).reset_index()
    per_kind_roc = kinds.pivot_table(index=["kind"], columns="model", values="pixel_roc_auc", sort=False).reset_index()
    models = [m for m in MODELS if m in set(rows.model)]
    per_kind = per_kind[["texture", "kind", *models]]
    per_kind_roc = per_kind_roc[["kind", *models]]
    seeds = sorted(rows.seed.unique().tolist())
    fit_seconds = rows.groupby("model", sort=False).fit_seconds.mean()
    text = [
        "# Synthetic anomalies from a flow, tested on real defects", "",
        f"Texture defect set (128 px crops, 200 normal training crops; seeds {seeds}). The patch sampler "
        f"(MAF on 8x8 patches) supplies {n_negatives} training crops with temperature-1.5 samples pasted in "
        f"(FastFlow two-class and U-Net) and {n_negatives} with far rejection samples (U-Net only). "
        "No model sees a real defect in training. "
        f"Torch threads: {threads}. Mean and standard deviation over seeds.", "",
        markdown_table(overall), "",
        "Pixel AUPRO per texture and real defect kind (mean over seeds; per kind: the kind's images and "
        "the normal test images; " + aupro_seeds + "):", "", markdown_table(per_kind), "",
        "Pixel ROC-AUC per real defect kind (the kind's images only):", "", markdown_table(per_kind_roc), "",
        "Mean fit seconds (several runs shared the 2 cores): "
        + ", ".join(f"{m} {s:.0f}" for m, s in fit_seconds.items()),
        "", "Heatmaps (seed 0): " + ", ".join(f"[{t}](synthetic_negatives_{t}.png)" for t in rows.texture.unique()),
    ]  # fmt: skip
    (out / "synthetic_negatives.md").write_text("\n".join(text) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--textures", default="brick,grass,gravel")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--negatives", type=int, default=100, help="pasted training crops per flow sampling kind")
    parser.add_argument("--models", default="0,1,2", help="indices into MODELS: " + ", ".join(
        f"{i} {m}" for i, m in enumerate(MODELS)))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/results/synth"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    maps_dir = args.out / "maps"
    maps_dir.mkdir(parents=True, exist_ok=True)
    results = args.out / "synthetic_negatives.jsonl"
    log = ResultsLog(results, key=("texture", "seed", "model"))  # resume: finished jobs are skipped
    textures = args.textures.split(",")
    models = [MODELS[int(i)] for i in args.models.split(",")]
    for texture in textures:
        for seed in (int(s) for s in args.seeds.split(",")):
            todo = [m for m in models if not log.done((texture, seed, m))]
            if todo:
                run(texture, seed, args.negatives, todo, maps_dir, log)
    rows = pd.DataFrame(read_rows(results))
    for texture in textures:
        heatmap_grid(maps_dir, texture, list(MODELS), args.out / f"synthetic_negatives_{texture}.png")
    write_summary(rows, args.out, args.negatives, args.threads)


if __name__ == "__main__":
    main()
