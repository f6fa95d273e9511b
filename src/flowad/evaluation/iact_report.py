"""Report of a gamma/hadron separation: Markdown, one self-contained HTML page and PNG figures.

Figures: feature histograms of gammas and hadrons, ROC curves drawn the IACT way (gamma efficiency
against hadron acceptance, log scale), example camera images (hexagonal or square pixels coloured by
photo-electrons, the cleaning mask outlined, the Hillas ellipse with its axis and centre of gravity)
and the efficiency table of :func:`~flowad.evaluation.iact_metrics.evaluate_separation`.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from flowad.evaluation.figures import subplots
from flowad.evaluation.html_page import html_page, html_table, img_tag
from flowad.evaluation.iact_metrics import DEFAULT_ACCEPTANCES, SeparationMetrics, evaluate_separation
from flowad.evaluation.markdown import markdown_table
from flowad.iact.camera import CameraGeometry
from flowad.iact.pipeline import FLOW_FEATURES, HillasFeatures

__all__ = ["draw_camera_image", "efficiency_table", "plot_feature_histograms", "plot_gamma_roc", "write_iact_report"]

_CLASS_NAMES = ("gamma", "hadron")


def _pixel_polygons(camera: CameraGeometry) -> np.ndarray:
    """Vertices of every pixel, shape ``(n_pix, k, 2)`` (k = 6 hexagon, 4 square, 12 circle)."""
    centres = np.column_stack([camera.pix_x, camera.pix_y])
    width = float(np.median(camera.pixel_width))
    if camera.pix_type == "square":
        k, radius, start = 4, width / np.sqrt(2.0), np.pi / 4
    elif camera.pix_type == "hexagon":
        # edges face the neighbours: vertices 30 degrees off the direction to the nearest pixel
        nb = camera.neighbors
        first = int(np.argmax(np.diff(nb.indptr) > 0)) if nb.nnz else 0
        j = nb.indices[nb.indptr[first]] if nb.nnz else first
        k, radius = 6, width / np.sqrt(3.0)
        start = np.arctan2(*(centres[j] - centres[first])[::-1]) + np.pi / 6
    else:
        k, radius, start = 12, width / 2.0, 0.0
    angles = start + 2 * np.pi * np.arange(k) / k
    return centres[:, None, :] + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)[None]


def draw_camera_image(ax, camera: CameraGeometry, image: np.ndarray, mask: np.ndarray | None = None,
                      hillas: dict | pd.Series | None = None, title: str = "", cmap: str = "viridis"):
    """Draw one camera image on a matplotlib axis.

    Args:
        ax: Matplotlib axis.
        camera: Camera geometry (pixel shapes from ``pix_type``).
        image: Pixel charges in photo-electrons, shape ``(n_pix,)`` (colour).
        mask: Cleaning mask, shape ``(n_pix,)`` boolean; kept pixels are outlined in white.
        hillas: Parameters of the cleaned image (``x``, ``y``, ``length``, ``width``, ``psi`` in metres
            and radians, ``valid``); draws the 1-sigma ellipse, the major axis and the cog.
        title: Axis title.
        cmap: Colour map.

    Returns:
        The pixel ``PolyCollection`` (for a colour bar).
    """
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Ellipse

    polygons = _pixel_polygons(camera)
    pixels = PolyCollection(polygons, array=np.asarray(image, dtype=float), cmap=cmap, edgecolors="face",
                            linewidths=0.1)
    ax.add_collection(pixels)
    if mask is not None and np.any(mask):
        ax.add_collection(PolyCollection(polygons[np.asarray(mask, dtype=bool)], facecolors="none",
                                         edgecolors="white", linewidths=0.7))
    if hillas is not None and bool(hillas.get("valid", True)) and float(hillas["length"]) > 0:
        x, y, psi = float(hillas["x"]), float(hillas["y"]), float(hillas["psi"])
        length, width = float(hillas["length"]), float(hillas["width"])
        ax.add_patch(Ellipse((x, y), 2 * length, 2 * width, angle=np.degrees(psi), fill=False, color="red", lw=1.2))
        reach = 3 * length
        ax.plot([x - reach * np.cos(psi), x + reach * np.cos(psi)], [y - reach * np.sin(psi), y + reach * np.sin(psi)],
                color="red", lw=0.7, ls="--")
        ax.plot([x], [y], marker="+", color="red", ms=8)
    r = camera.radius * 1.05 + float(np.median(camera.pixel_width))
    ax.set(xlim=(-r, r), ylim=(-r, r), aspect="equal", title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    return pixels


def plot_feature_histograms(table: pd.DataFrame, y: np.ndarray, path: str | Path,
                            features: tuple[str, ...] = FLOW_FEATURES) -> Path:
    """Histograms of each feature for valid gammas and hadrons (0.5 - 99.5 percentile range).

    Args:
        table: Feature table with a ``valid`` column (``N`` rows).
        y: Labels ``(N,)``, 0 = gamma, 1 = hadron.
        path: PNG to write.
        features: Columns to draw (those missing from ``table`` are skipped).
    """
    names = [f for f in features if f in table]
    valid = table["valid"].to_numpy(dtype=bool) if "valid" in table else np.ones(len(table), bool)
    labels = np.asarray(y)
    cols = min(4, max(len(names), 1))
    rows = max(-(-len(names) // cols), 1)
    fig, axes = subplots(rows, cols, extra="iact", figsize=(3.0 * cols, 2.3 * rows), dpi=100, squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        values = table[name].to_numpy(dtype=float)[valid]
        lo, hi = np.percentile(values, [0.5, 99.5]) if values.size else (0.0, 1.0)
        bins = np.linspace(lo, hi if hi > lo else lo + 1, 40)
        for label, colour in ((0, "C0"), (1, "C3")):
            part = np.clip(values[labels[valid] == label], lo, hi)
            if part.size:
                ax.hist(part, bins=bins, density=True, alpha=0.55, color=colour, label=_CLASS_NAMES[label])
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_gamma_roc(y: np.ndarray, gammaness: dict[str, np.ndarray], path: str | Path,
                   cuts: dict[str, tuple[float, float]] | None = None, title: str = "ROC") -> Path:
    """Gamma efficiency against hadron acceptance (log x axis), one curve per model.

    Args:
        y: Labels ``(N,)``, 0 = gamma, 1 = hadron (valid events only).
        gammaness: Model name -> gammaness ``(N,)``.
        path: PNG to write.
        cuts: Model name -> ``(hadron acceptance, gamma efficiency)`` of its training cut (marker).
        title: Figure title.
    """
    labels = np.asarray(y)
    n_h = max(int((labels == 1).sum()), 1)
    fig, ax = subplots(extra="iact", figsize=(5.4, 4.4), dpi=110)
    for i, (name, scores) in enumerate(gammaness.items()):
        s = np.asarray(scores, dtype=float)
        order = np.argsort(-s, kind="stable")
        hadron = np.cumsum(labels[order] == 1) / n_h
        gamma = np.cumsum(labels[order] == 0) / max(int((labels == 0).sum()), 1)
        ax.plot(np.maximum(hadron, 0.5 / n_h), gamma, lw=1.4, color=f"C{i}", label=name)
        if cuts and name in cuts:
            ax.plot(max(cuts[name][0], 0.5 / n_h), cuts[name][1], "o", color=f"C{i}", ms=5)
    for a in DEFAULT_ACCEPTANCES:
        ax.axvline(a, color="0.85", lw=0.6, zorder=0)
    ax.set(xscale="log", xlim=(0.5 / n_h, 1), ylim=(0, 1.01), xlabel="hadron acceptance",
           ylabel="gamma efficiency", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def efficiency_table(metrics: dict[str, SeparationMetrics]) -> pd.DataFrame:
    """One row per model: ROC-AUC, gamma efficiency and Q at each acceptance, Q max, the training cut."""
    rows = []
    for name, m in metrics.items():
        row = {"model": name, "roc_auc": m.roc_auc}
        row.update({f"eps_g@{100 * a:g}%": v for a, v in m.gamma_efficiency.items()})
        row.update({f"Q@{100 * a:g}%": v for a, v in m.quality_factor.items()})
        row.update({"Q_max": m.q_max, "cut eps_g": m.cut_gamma_efficiency, "cut eps_h": m.cut_hadron_acceptance})
        rows.append(row)
    return pd.DataFrame(rows)


def _examples(y: np.ndarray, valid: np.ndarray, n: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    picks = []
    for label in (0, 1):
        rows = np.flatnonzero((np.asarray(y) == label) & valid)
        picks += sorted(rng.choice(rows, size=min(n, rows.size), replace=False).tolist())
    return picks


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_iact_report(out_dir: str | Path, y: np.ndarray, gammaness: dict[str, np.ndarray], *,
                      valid: np.ndarray | None = None, cuts: dict[str, float] | None = None,
                      table: pd.DataFrame | None = None, features: tuple[str, ...] = FLOW_FEATURES,
                      images: np.ndarray | None = None, hillas: HillasFeatures | None = None,
                      n_examples: int = 3, title: str = "IACT gamma/hadron separation",
                      random_state: int = 0) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html``, ``metrics.json`` and PNGs into ``out_dir``.

    Args:
        out_dir: Folder (created).
        y: Labels ``(N,)``: 0 = gamma, 1 = hadron (other values are counted as hadrons).
        gammaness: Model name -> gammaness ``(N,)``, higher = more gamma-like.
        valid: Events with valid image parameters ``(N,)``; the others are counted and left out.
        cuts: Model name -> its cut learned on training data.
        table: Feature table ``(N rows)`` for the histograms (and the Hillas ellipses).
        features: Columns of ``table`` to histogram.
        images: Raw images ``(N, n_pix)``; with ``hillas``, example events are drawn.
        hillas: The image step (camera, cleaning) that made ``table``.
        n_examples: Example events per class.
        title: Report title.
        random_state: Seed for picking the examples.

    Returns:
        The Markdown and HTML paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    labels = (np.asarray(y) != 0).astype(np.int64)
    keep = np.ones(len(labels), bool) if valid is None else np.asarray(valid, dtype=bool)
    cuts = cuts or {}
    metrics = {name: evaluate_separation(labels, g, cut=cuts.get(name), valid=keep) for name, g in gammaness.items()}
    (out / "metrics.json").write_text(json.dumps(_json_safe({k: m.as_dict() for k, m in metrics.items()}), indent=2))
    first = next(iter(metrics.values()))
    counts = (f"{first.n_gamma} gammas and {first.n_hadron} hadrons with valid image parameters; left out: "
              f"{first.n_invalid_gamma} gammas and {first.n_invalid_hadron} hadrons without.")
    note = ("Efficiencies are shares of the valid events; a cut at a hadron acceptance keeps at most that share of "
            "hadrons. Q = eps_gamma / sqrt(eps_hadron); Q_max over cuts keeping at least 10 hadrons. "
            "'cut' columns: the cut learned on training data (e.g. keeping 90% of training gammas).")
    frame = efficiency_table(metrics)
    md = [f"# {title}\n", counts + "\n", "## Efficiencies\n", note + "\n", markdown_table(frame)]
    body = [f"<h1>{html.escape(title)}</h1>", f"<p>{html.escape(counts)}</p>", "<h2>Efficiencies</h2>",
            f"<p>{html.escape(note)}</p>", html_table(frame.set_index("model"))]
    marks = {n: (m.cut_hadron_acceptance, m.cut_gamma_efficiency) for n, m in metrics.items() if m.cut is not None}
    roc = plot_gamma_roc(labels[keep], {n: np.asarray(g)[keep] for n, g in gammaness.items()}, out / "roc.png",
                         cuts=marks, title="gamma efficiency vs hadron acceptance (dots: training cut)")
    md.append("## ROC curves\n\n![ROC](roc.png)\n")
    body += ["<h2>ROC curves</h2>", img_tag(roc)]
    if table is not None:
        png = plot_feature_histograms(table.assign(valid=keep), labels, out / "features.png", features)
        md.append("## Features of valid events\n\n![features](features.png)\n")
        body += ["<h2>Features of valid events</h2>", img_tag(png)]
    if images is not None and hillas is not None:
        png = _example_figure(out / "camera_examples.png", images, labels, keep, hillas, gammaness,
                              n_examples, random_state)
        text = ("Example events: charge in photo-electrons, cleaning mask outlined in white, Hillas ellipse "
                "(1 sigma; dashed: major axis; +: centre of gravity) in red.")
        md.append(f"## Camera images\n\n{text}\n\n![examples](camera_examples.png)\n")
        body += ["<h2>Camera images</h2>", f"<p>{html.escape(text)}</p>", img_tag(png)]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(md))
    html_path.write_text(html_page(title, "\n".join(body)))
    return md_path, html_path


def _example_figure(path: Path, images: np.ndarray, labels: np.ndarray, keep: np.ndarray, step: HillasFeatures,
                    gammaness: dict[str, np.ndarray], n: int, seed: int) -> Path:
    picks = _examples(labels, keep, n, seed)
    sample = np.asarray(images)[picks]
    masks = step.clean(sample)
    params = step.transform(sample)
    model, scores = next(iter(gammaness.items())) if gammaness else ("", None)
    cols = max(n, 1)
    fig, axes = subplots(2, cols, extra="iact", figsize=(3.3 * cols, 6.4), dpi=100, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for k, event in enumerate(picks):
        label = int(labels[event])
        column = k if label == 0 else k - sum(1 for p in picks if labels[p] == 0)
        ax = axes[label, column]
        ax.axis("on")
        score = "" if scores is None else f"\n{model}: {np.asarray(scores)[event]:.3g}"
        pixels = draw_camera_image(ax, step.camera, sample[k], masks[k], params.iloc[k],
                                   title=f"{_CLASS_NAMES[label]} #{event}{score}")
        fig.colorbar(pixels, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
        ax.title.set_fontsize(8)
    fig.tight_layout()
    fig.savefig(path)
    return path
