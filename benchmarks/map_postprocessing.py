"""What the post-processing of one fit's anomaly maps does to the texture metrics.

Reads the maps an image-bench run kept (``flowad study image-bench --keep-maps``:
``maps/<texture>__<model>_all.npz``), rebuilds each run's test set from its ``config.json`` (same
seed, same options), and measures every variant below on the same maps: pixel ROC-AUC over all test
crops and per defect kind (that kind's crops only, as the bench's per-kind rows count them), AUPRO,
and the image ROC-AUC of each variant's map maximum. No model is fitted: the variants differ only
after the map.

Variants: ``raw`` (the maps as kept), ``blurS`` (a Gaussian blur of S px, what ``smooth_sigma=S``
gives), ``raw+blurS`` (the mean of the raw and the blurred map: small defects keep some of their
peak, large ones get some of the blur's smoothing).

Usage:
    python benchmarks/map_postprocessing.py --runs runs/image_seed0_ff_blur,runs/image_seed1_ff_blur \\
        --model fastflow --out docs/results/images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowad.core.image_maps import gaussian_smooth
from flowad.datasets.textures import make_texture_set
from flowad.evaluation.image_metrics import aupro, image_roc_auc, pixel_roc_auc
from flowad.evaluation.markdown import markdown_table

BLURS = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0)
MIXES = (2.0, 4.0)


def variants(maps: np.ndarray) -> dict[str, np.ndarray]:
    """Every post-processing of ``maps`` ``(N, H, W)`` measured here, by name."""
    raw = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))
    blurred = {s: gaussian_smooth(raw, s).numpy() for s in sorted({*BLURS, *MIXES})}
    out = {"raw": maps.astype(np.float32)}
    out.update({f"blur{s:g}": blurred[s] for s in BLURS})
    out.update({f"raw+blur{s:g}": 0.5 * (out["raw"] + blurred[s]) for s in MIXES})
    return out


def measure(test, maps: np.ndarray) -> dict[str, float]:
    """Pixel ROC-AUC (all and per kind), AUPRO and the map-maximum image ROC-AUC of one variant."""
    kinds = np.asarray(test.kinds)
    row = {"pixel_roc_auc": pixel_roc_auc(test.masks, maps), "aupro": aupro(test.masks, maps),
           "image_roc_auc_mapmax": image_roc_auc(test.labels, maps.reshape(len(maps), -1).max(1))}
    for kind in sorted(set(kinds) - {"good"}):
        sel = kinds == kind
        row[f"pixel_{kind}"] = pixel_roc_auc(test.masks[sel], maps[sel])
    return row


def run(run_dirs: list[Path], model: str) -> pd.DataFrame:
    """One row per (run, texture, variant) for every kept map of ``model``."""
    rows = []
    for run_dir in run_dirs:
        config = json.loads((run_dir / "config.json").read_text())
        for path in sorted((run_dir / "maps").glob(f"*__{model}_all.npz")):
            texture = path.name.split("__")[0]
            _, test = make_texture_set(texture, random_state=config["seed"], **config.get("texture_options", {}))
            kept = np.load(path)
            for name, maps in variants(kept["maps"]).items():
                rows.append({"seed": config["seed"], "texture": texture, "model": model, "variant": name,
                             **measure(test, maps)})
    return pd.DataFrame(rows)


def report(table: pd.DataFrame) -> str:
    """Markdown: per texture and variant, the mean over seeds of every metric."""
    seeds = sorted(table.seed.unique())
    metrics = [c for c in table.columns if c not in ("seed", "texture", "model", "variant")]
    mean = table.groupby(["texture", "variant"], sort=False)[metrics].mean().reset_index()
    lines = [f"# Post-processing of {table.model.iloc[0]}'s maps (texture set)", "",
             "Written by `benchmarks/map_postprocessing.py` from the maps of image-bench runs at seeds "
             f"{', '.join(map(str, seeds))} (`--keep-maps`); mean over the seeds. Every variant is the same fit's "
             "maps post-processed: `raw` as the flows give them, `blurS` a Gaussian blur of S px, `raw+blurS` "
             "the mean of both. Pixel ROC-AUC per kind counts that kind's crops only; `image_roc_auc_mapmax` "
             "scores each crop by its map's maximum.", ""]
    for texture, part in mean.groupby("texture", sort=False):
        lines += [f"## {texture}", "", markdown_table(part.drop(columns="texture")), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="Comma-separated image-bench folders run with --keep-maps.")
    parser.add_argument("--model", default="fastflow")
    parser.add_argument("--out", type=Path, default=Path("docs/results/images"))
    args = parser.parse_args()
    table = run([Path(p) for p in args.runs.split(",") if p], args.model)
    if table.empty:
        raise SystemExit(f"error: no kept maps of {args.model!r} under --runs (run the bench with --keep-maps)")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"map_postprocessing_{args.model}"
    table.to_json(stem.with_suffix(".jsonl"), orient="records", lines=True)
    stem.with_suffix(".md").write_text(report(table))
    print(f"wrote {stem}.jsonl and {stem}.md")


if __name__ == "__main__":
    main()
