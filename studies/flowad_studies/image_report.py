"""Report of the image benchmark: Markdown and one self-contained HTML page with the tables, a
heatmap grid per texture and the small-defect score distributions."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from flowad.evaluation.html_page import html_page, html_table, img_tag  # noqa: E402
from flowad.evaluation.markdown import markdown_table  # noqa: E402
from flowad.evaluation.tabular_metrics import roc_auc  # noqa: E402

__all__ = ["heatmap_grid", "write_image_bench_report"]


def heatmap_grid(maps_dir: Path, texture: str, models: list[str], path: Path) -> Path | None:
    """A PNG grid per texture: image, mask and each model's map (one row per image) from the files
    ``maps_dir/<texture>__<model>.npz`` (arrays ``images``, ``masks``, ``kinds``, ``maps``); None when
    no model has a file."""
    files = {m: maps_dir / f"{texture}__{m}.npz" for m in models if (maps_dir / f"{texture}__{m}.npz").exists()}
    if not files:
        return None
    loaded = {m: np.load(f) for m, f in files.items()}
    first = next(iter(loaded.values()))
    images, masks, kinds = first["images"], first["masks"], first["kinds"]
    cols = 2 + len(loaded)
    fig, axes = plt.subplots(len(images), cols, figsize=(1.6 * cols, 1.6 * len(images)), squeeze=False)
    for r in range(len(images)):
        cells = [(images[r], "gray", "image"), (masks[r].astype(float), "gray", "mask")]
        cells += [(data["maps"][r], "inferno", model.replace("@", "\n")) for model, data in loaded.items()]
        for c, (picture, cmap, title) in enumerate(cells):
            ax = axes[r, c]
            ax.imshow(picture, cmap=cmap)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(str(kinds[r]), fontsize=7)
    fig.suptitle(f"{texture}: anomaly maps (brighter = more anomalous)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=60)
    plt.close(fig)
    return path


def _small_defect_plot(rows: pd.DataFrame, path: Path) -> Path | None:
    rows = rows[rows["small_defects"].map(bool)]
    if rows.empty:
        return None
    models = list(dict.fromkeys(rows["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(3.2 * len(models), 2.6), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        quantiles = np.concatenate([r["defect_pixel_quantile"] for r in rows[rows.model == model]["small_defects"]])
        ax.hist(quantiles, bins=np.linspace(0, 1, 21), color="tab:red")
        ax.set_title(f"{model}: median {np.median(quantiles):.2f}", fontsize=9)
        ax.set_xlabel("defect's map value as a quantile\nof normal pixels' values", fontsize=8)
    fig.suptitle("2-4 px squares: where the map puts them (1 = above every normal pixel)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _tables(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    tables: dict[str, pd.DataFrame] = {}
    tex = rows[rows.task == "texture"]
    if not tex.empty:
        for metric in ("image_roc_auc", "pixel_roc_auc", "aupro"):
            table = tex.pivot_table(index="dataset", columns="model", values=metric)
            table.loc["mean"] = table.mean()
            tables[f"Texture sets: {metric}"] = table.rename_axis("texture")
        kind_rows = [{"model": r.model, "kind": kind, "dataset": r.dataset, **vals}
                     for r in tex.itertuples() for kind, vals in r.per_kind.items()]
        kinds = pd.DataFrame(kind_rows)
        tables["Pixel ROC-AUC per defect kind (mean over textures)"] = kinds.pivot_table(
            index="kind", columns="model", values="pixel_roc_auc")
        tables["Image ROC-AUC per defect kind, kind vs good (mean over textures)"] = kinds.pivot_table(
            index="kind", columns="model", values="image_roc_auc")
        small = []
        for r in tex.itertuples():
            if r.small_defects:
                d = r.small_defects
                y = np.r_[np.zeros(len(d["good_scores"])), np.ones(len(d["small_scores"]))]
                small.append({"model": r.model, "dataset": r.dataset,
                              "image ROC-AUC (2-4 px vs good)": roc_auc(y, np.r_[d["good_scores"], d["small_scores"]]),
                              "median defect quantile": float(np.median(d["defect_pixel_quantile"]))})
        if small:
            tables["Small defects (2-4 px squares)"] = pd.DataFrame(small).groupby("model").mean(numeric_only=True)
        if "seconds_per_256px_image" in tex:
            timing = tex.dropna(subset=["seconds_per_256px_image"]).set_index("model")["seconds_per_256px_image"]
            if "autoencoder" in timing.index:
                tables["CPU seconds per 256x256 image (scoring)"] = pd.DataFrame(
                    {"seconds": timing, "ratio to autoencoder": timing / timing["autoencoder"]})
    dig = rows[rows.task == "digits"]
    for dataset in dict.fromkeys(dig.get("dataset", [])):
        table = dig[dig.dataset == dataset].pivot_table(index="subset", columns="model", values="image_roc_auc")
        table = table.loc[sorted(table.index, key=int)].rename_axis("normal class")
        table.loc["mean"] = table.mean()
        tables[f"{dataset} one-class image ROC-AUC (normal class per row)"] = table
    return tables


def write_image_bench_report(out_dir: str | Path, title: str = "flowad image benchmark") -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` (plus PNG figures) from ``out_dir/results.jsonl``."""
    out = Path(out_dir)
    lines = (out / "results.jsonl").read_text().splitlines()
    if not lines:
        raise ValueError(f"no results in {out / 'results.jsonl'}")
    rows = pd.DataFrame([json.loads(line) for line in lines])
    failures = rows[rows["error"].notna()] if "error" in rows else rows.iloc[:0]
    rows = rows[rows["error"].isna()] if "error" in rows else rows
    machine = json.loads((out / "machine.json").read_text()) if (out / "machine.json").exists() else {}
    tables = _tables(rows)
    figures = []
    for texture in dict.fromkeys(rows[rows.task == "texture"]["dataset"]):
        fig = heatmap_grid(out / "maps", texture, list(dict.fromkeys(rows.model)), out / f"heatmaps_{texture}.png")
        if fig:
            figures.append(fig)
        else:  # no maps here (they are not kept in git): the grids an earlier run drew stay in the report
            figures += sorted(out.glob(f"heatmaps_{texture}.png")) + sorted(out.glob(f"heatmaps_{texture}_*.png"))
    if "small_defects" in rows:
        fig = _small_defect_plot(rows[rows.task == "texture"], out / "small_defects.png")
        if fig:
            figures.append(fig)
    rows.drop(columns=[c for c in ("per_kind", "small_defects") if c in rows]).to_csv(out / "results.csv", index=False)
    where = f"{machine.get('processor', '?')}, {machine.get('cpu_count', '?')} CPUs, " \
            f"{machine.get('torch_threads', '?')} torch thread(s), torch {machine.get('torch', '?')}"
    md = [f"# {title}", "", f"Machine: {where}.", ""]
    body = [f"<h1>{title}</h1><p>Machine: {where}.</p>"]
    for name, table in tables.items():
        md += [f"## {name}", "", markdown_table(table.reset_index()), ""]
        body.append(f"<h2>{name}</h2>{html_table(table)}")
    if not failures.empty:
        failed = failures[["task", "dataset", "subset", "model", "error"]].reset_index(drop=True)
        md += ["## Failed jobs", "", markdown_table(failed), ""]
        body.append(f"<h2>Failed jobs</h2>{html_table(failed)}")
    for fig in figures:
        md += [f"![{fig.stem}]({fig.name})", ""]
        body.append(img_tag(fig))
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md))
    html_path.write_text(html_page(title, "\n".join(body)))
    return md_path, html_path
