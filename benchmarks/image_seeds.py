"""The texture rows of several image-benchmark runs, one per seed, side by side: per texture and
model, the mean over the seeds and the range (lowest-highest) of image ROC-AUC, pixel ROC-AUC and
AUPRO, the pixel ROC-AUC per defect kind, and the better of FastFlow and PatchCore per texture.

Each folder is an ``flowad study image-bench -o DIR`` run (its ``config.json`` holds the seed).
Only texture rows count; a cell says how many seeds it averages when some run lacks the model.

Usage:
    python benchmarks/image_seeds.py --runs docs/results/images,docs/results/images/seed1,docs/results/images/seed2 \
        --out docs/results/images
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

METRICS = ("image_roc_auc", "pixel_roc_auc", "aupro")
#: The two models the per-texture verdict compares (on the default backbone).
PAIR = ("fastflow", "patchcore")


def texture_rows(run: Path) -> pd.DataFrame:
    """The texture rows of one run ``(rows, [seed, dataset, model, metrics..., kind pixel ROC-AUCs])``."""
    seed = json.loads((run / "config.json").read_text()).get("seed", 0)
    records = []
    for line in (run / "results.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("task") != "texture" or "error" in row:
            continue
        record = {"seed": seed, "dataset": row["dataset"], "model": row["model"], **{m: row[m] for m in METRICS}}
        record.update({f"pixel:{kind}": v["pixel_roc_auc"] for kind, v in row.get("per_kind", {}).items()})
        records.append(record)
    return pd.DataFrame(records)


def combine(runs: list[Path]) -> pd.DataFrame:
    """Rows of every run, one per (seed, texture, model); a seed found twice is an error."""
    frame = pd.concat([texture_rows(r) for r in runs], ignore_index=True)
    twice = frame.duplicated(["seed", "dataset", "model"])
    if twice.any():
        raise ValueError(f"runs: seed {int(frame.seed[twice].iloc[0])} appears in more than one run folder")
    return frame


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (texture, model): number of seeds, and for each metric its mean, min and max."""
    grouped = frame.groupby(["dataset", "model"])
    out = grouped.size().rename("seeds").to_frame()
    for metric in [c for c in frame.columns if c in METRICS or c.startswith("pixel:")]:
        out[f"{metric}_mean"] = grouped[metric].mean()
        out[f"{metric}_min"] = grouped[metric].min()
        out[f"{metric}_max"] = grouped[metric].max()
    return out.reset_index()


def _cell(row: pd.Series, metric: str, n_seeds: int) -> str:
    text = f"{row[f'{metric}_mean']:.3f} ({row[f'{metric}_min']:.3f}-{row[f'{metric}_max']:.3f})"
    return text if row["seeds"] == n_seeds else f"{text}, {int(row['seeds'])} seed(s)"


def verdict(table: pd.DataFrame, metric: str) -> dict[str, str]:
    """The better of :data:`PAIR` per texture by the mean of ``metric`` (texture -> model)."""
    pair = table[table.model.isin(PAIR)]
    return {texture: group.loc[group[f"{metric}_mean"].idxmax(), "model"] for texture, group in pair.groupby("dataset")
            if set(group.model) == set(PAIR)}


def markdown(frame: pd.DataFrame, min_seeds: int = 1) -> str:
    """The page: one table per metric (textures x models), the per-kind pixel table and the verdict;
    models run at fewer than ``min_seeds`` seeds are left out."""
    table = summary(frame)
    table = table[table.seeds >= min_seeds]
    models = list(dict.fromkeys(table.model))
    seeds = sorted(frame.seed.unique())
    n = len(seeds)
    lines = ["# Image models over seeds (texture set)", "",
             f"Written by `benchmarks/image_seeds.py` from {n} runs of `flowad study image-bench` (seeds "
             f"{', '.join(str(s) for s in seeds)}; each seed draws other crops and initialisations). Mean over the "
             "seeds, lowest-highest in brackets.", ""]
    for metric in METRICS:
        lines += [f"## {metric}", "", "| texture | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
        for texture, group in table.groupby("dataset"):
            cells = {r.model: _cell(r, metric, n) for _, r in group.iterrows()}
            lines.append(f"| {texture} | " + " | ".join(cells.get(m, "") for m in models) + " |")
        lines.append("")
    kinds = sorted(c[len("pixel:"):-len("_mean")] for c in table.columns if c.startswith("pixel:") and
                   c.endswith("_mean"))
    lines += ["## Pixel ROC-AUC per defect kind (mean over seeds)", "",
              "| texture | model | " + " | ".join(kinds) + " |", "|---|---|" + "---|" * len(kinds)]
    for _, r in table.iterrows():
        lines.append(f"| {r.dataset} | {r.model} | " + " | ".join(f"{r[f'pixel:{k}_mean']:.3f}" for k in kinds) + " |")
    lines += ["", f"## {PAIR[0]} or {PAIR[1]}", "", "| texture | better image ROC-AUC | better pixel ROC-AUC | "
              "better AUPRO |", "|---|---|---|---|"]
    picks = {m: verdict(table, m) for m in METRICS}
    for texture in sorted(picks["image_roc_auc"]):
        lines.append(f"| {texture} | " + " | ".join(picks[m].get(texture, "") for m in METRICS) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", required=True, help="Comma-separated image-bench run folders, one per seed.")
    parser.add_argument("--min-seeds", type=int, default=2, help="Leave out models run at fewer seeds.")
    parser.add_argument("--out", type=Path, default=Path("runs/image_seeds"))
    args = parser.parse_args()
    frame = combine([Path(p) for p in args.runs.split(",") if p])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "seeds.md").write_text(markdown(frame, args.min_seeds))
    frame.to_csv(args.out / "seeds.csv", index=False)
    print(f"wrote {args.out / 'seeds.md'} ({len(frame)} rows)")


if __name__ == "__main__":
    main()
