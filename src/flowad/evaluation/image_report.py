"""The HTML page of ``flowad image score``: every image with its heatmap, most anomalous first.

One self-contained file (thumbnails as PNG data URIs, inline CSS, no scripts, nothing fetched):

- a header: the model, how many images were scored, the threshold and how many images it flags;
- the metrics table when the images have labels (image ROC-AUC; pixel ROC-AUC and AUPRO with masks);
- a colour scale shared by every card, so that cards compare with each other;
- a grid of cards sorted by anomaly score, highest first: the image with its anomaly map blended
  over it (colour and opacity grow with the map value), the outline of the ground-truth mask where
  there is one, the file, its kind, score and p-value; flagged images are framed in red, and a line
  in the grid marks where the threshold falls.

Large folders show the ``max_cards`` highest-scoring images; the rest are in the scores table.

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 255, (4, 16, 16), dtype=np.uint8)
    >>> maps = rng.random((4, 16, 16))
    >>> page = write_image_report(pathlib.Path(tempfile.mkdtemp()) / "report.html",
    ...     files=[f"test/good/{i}.png" for i in range(4)], kinds=["good"] * 4, images=images, maps=maps,
    ...     scores=maps.max(axis=(1, 2)), p_values=None, threshold=0.99)
    >>> page.read_text().count("class='card")
    4
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from flowad.core.safe_files import atomic_write_text
from flowad.evaluation.heatmaps import as_rgb, colour_range
from flowad.evaluation.html_page import html_page, png_uri

__all__ = ["COLORMAP", "MAX_CARDS", "THUMBNAIL", "metric_rows", "write_image_report"]

#: Matplotlib colour map of the heatmaps.
COLORMAP = "inferno"
#: Opacity of the heatmap at the top of the colour scale; it falls with the square of the scaled value
#: to 0 at the bottom, so that the low values of normal texture leave the image as it is.
MAX_OPACITY = 0.85
#: Longest side of a thumbnail in pixels.
THUMBNAIL = 192
#: Most cards on one page.
MAX_CARDS = 200
#: Colour of the ground-truth mask's outline (cyan: absent from the colour map).
OUTLINE_RGB = (0, 229, 255)

#: How the metrics of :class:`~flowad.evaluation.image_metrics.ImageMetrics` read in tables.
METRIC_LABELS = {
    "image_roc_auc": "image ROC-AUC",
    "pixel_roc_auc": "pixel ROC-AUC",
    "aupro": "AUPRO (to 30% false-positive rate)",
    "image_best_f1": "image best F1",
    "pixel_best_f1": "pixel best F1",
    "n_images": "images",
    "n_anomalous": "anomalous images",
}

_STYLE = (
    "table.kv th{text-align:left;font-weight:500;color:#555}table.kv td{text-align:left}"
    ".blocks{display:flex;flex-wrap:wrap;gap:0 48px;align-items:flex-start}.blocks h2{margin:.4em 0 .2em}"
    ".legend{display:flex;align-items:center;gap:8px;font-size:13px;margin:.3em 0}"
    ".legend .bar{width:320px;height:14px;border:1px solid #999}"
    ".legend .mask{display:inline-block;width:22px;height:0;border-top:2px solid rgb(0,229,255);margin-left:18px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(192px,1fr));gap:10px;margin-top:1em}"
    ".card{margin:0;border:1px solid #ccc;border-radius:4px;padding:4px;font-size:12px;background:#fafafa}"
    ".card img{display:block;width:100%;height:auto}"
    ".card.flagged{border:3px solid #c62828;padding:2px;background:#fff4f4}"
    ".card figcaption{padding:3px 2px 0;line-height:1.35}"
    ".card .file{overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:11px}"
    ".card .flag{float:right;background:#c62828;color:#fff;border-radius:3px;padding:0 4px;font-weight:600}"
    ".threshold{grid-column:1/-1;border-top:2px dashed #c62828;color:#c62828;font-size:13px;padding-top:2px}"
)


def metric_rows(metrics: Mapping[str, object]) -> list[tuple[str, str]]:
    """``(label, value)`` rows of image metrics as they read: rates with three decimals, counts as
    integers; NaN metrics (pixel metrics without masks) are left out.

    Example:
        >>> metric_rows({"image_roc_auc": 0.91234, "pixel_roc_auc": float("nan"), "n_images": 30})
        [('image ROC-AUC', '0.912'), ('images', '30')]
    """
    rows = []
    for name, value in metrics.items():
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            rows.append((METRIC_LABELS.get(name, name), str(value)))
        elif isinstance(value, (int, np.integer)):
            rows.append((METRIC_LABELS.get(name, name), f"{int(value):,}"))
        elif math.isfinite(float(value)):
            rows.append((METRIC_LABELS.get(name, name), f"{float(value):.3f}"))
    return rows


def write_image_report(
    path: str | Path,
    *,
    files: Sequence[str],
    kinds: Sequence[str],
    images: np.ndarray,
    maps: np.ndarray,
    scores: np.ndarray,
    p_values: np.ndarray | None,
    threshold: float,
    metrics: Mapping[str, object] | None = None,
    masks: np.ndarray | None = None,
    title: str = "flowad image scores",
    model: Mapping[str, object] | None = None,
    contamination: float | None = None,
    scores_file: str | None = None,
    max_cards: int = MAX_CARDS,
) -> Path:
    """Write the page (atomically) and return its path.

    Args:
        path: The HTML file to write.
        files: ``N`` file names as the user knows them (``test/crack/003.png``).
        kinds: ``N`` kinds (``"good"`` or the defect's folder name).
        images: ``(N, H, W)`` or ``(N, H, W, 3)``, uint8 or float in [0, 1].
        maps: ``(N, H, W)`` anomaly maps, higher = more anomalous.
        scores: ``(N,)`` anomaly scores, higher = more anomalous (minus ``score_samples``).
        p_values: ``(N,)`` conformal p-values, or None where the model has none.
        threshold: Images with ``scores > threshold`` are flagged (minus the model's ``offset_``).
        metrics: Name -> value (``ImageMetrics.as_dict()``) for labelled images, or None.
        masks: ``(N, H, W)`` bool ground-truth masks, or None; an all-False mask draws no outline.
        title: Page heading.
        model: Facts shown first in the header, e.g. ``{"model": "FastFlowDetector", "backbone": ...}``.
        contamination: The share of normal images the threshold was calibrated to flag, or None.
        scores_file: Where all scores are (named in the note when cards are left out).
        max_cards: Most cards shown (the highest scores).

    Raises:
        ValueError: If the arguments' lengths or shapes disagree, or ``max_cards`` is below 1.
    """
    images, maps, scores, p_values, masks = _checked(files, kinds, images, maps, scores, p_values, masks)
    files, kinds = [str(f) for f in files], [str(k) for k in kinds]
    if int(max_cards) < 1:
        raise ValueError(f"max_cards must be at least 1, got {max_cards!r}")
    n = len(scores)
    flagged = scores > threshold
    order = np.argsort(-scores, kind="stable")[: int(max_cards)]
    low, high = colour_range(maps)
    n_flagged = int(flagged.sum())

    blocks = [f"<div><h2>Model and threshold</h2>{_facts(model, n, threshold, contamination)}</div>"]
    if metrics:
        blocks.append(f"<div class='metrics'><h2>Metrics</h2>{_table(metric_rows(metrics), 't kv')}</div>")
    if len(set(kinds)) > 1:
        rows = [(kind, f"{int(flagged[np.asarray(kinds) == kind].sum())} of {kinds.count(kind)}")
                for kind in dict.fromkeys(kinds)]
        blocks.append(f"<div><h2>Flagged per kind</h2>{_table(rows, 't kv')}</div>")
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class='big'>{n_flagged} of {n} images flagged ({n_flagged / n:.1%})</p>",
            "<div class='blocks'>" + "".join(blocks) + "</div>",
            _explanation(contamination, p_values is not None, bool(metrics))]
    body += [f"<h2>Images, most anomalous first ({len(order)} of {n})</h2>", _legend(low, high, masks is not None)]
    cards = []
    for rank, i in enumerate(order, start=1):
        if rank == n_flagged + 1:
            cards.append(_threshold_line(threshold, n_flagged))
        thumbnail = _thumbnail(images[i], maps[i], None if masks is None else masks[i], low, high)
        cards.append(_card(rank, files[i], kinds[i], scores[i], None if p_values is None else p_values[i],
                           bool(flagged[i]), thumbnail))
    if n_flagged == len(order):
        cards.append(_threshold_line(threshold, n_flagged))
    body.append("<div class='grid'>" + "".join(cards) + "</div>")
    if len(order) < n:
        where = f" in {html.escape(scores_file)}" if scores_file else " in the scores table"
        more_flagged = n_flagged - int(flagged[order].sum())
        extra = f", {more_flagged} of them flagged" if more_flagged else ""
        body.append(f"<p class='note'>{n - len(order)} more images with lower scores{extra}: all scores are"
                    f"{where}.</p>")
    return atomic_write_text(path, html_page(title, "\n".join(body), _STYLE))


def _checked(files, kinds, images, maps, scores, p_values, masks):
    images, maps = np.asarray(images), np.asarray(maps, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    if maps.ndim != 3 or len(maps) == 0:
        raise ValueError(f"maps must have shape (N, H, W) with N >= 1, got {maps.shape}")
    n, h, w = maps.shape
    if images.shape[:3] != (n, h, w) or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[3] != 3):
        raise ValueError(f"images must have shape ({n}, {h}, {w}) or ({n}, {h}, {w}, 3) like maps, got {images.shape}")
    for name, value in (("files", files), ("kinds", kinds), ("scores", scores)):
        if len(value) != n:
            raise ValueError(f"{name} must have {n} entries like maps, got {len(value)}")
    if not np.isfinite(scores).all() or not np.isfinite(maps).all():
        raise ValueError("scores and maps must be finite")
    if p_values is not None:
        p_values = np.asarray(p_values, dtype=np.float64)
        if p_values.shape != (n,):
            raise ValueError(f"p_values must have shape ({n},) like scores, got {p_values.shape}")
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (n, h, w):
            raise ValueError(f"masks must have shape {(n, h, w)} like maps, got {masks.shape}")
        if not masks.any():
            masks = None
    return images, maps, scores, p_values, masks


def _number(value: float) -> str:
    if not math.isfinite(value) or abs(value) > 1e300:
        return "none: too few held-out normal images for this rate (fit on more, or raise contamination)"
    return f"{value:.4g}"


def _table(rows: Sequence[tuple[str, object]], css: str) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table class='{css}'>{cells}</table>"


def _facts(model, n: int, threshold: float, contamination: float | None) -> str:
    rows = [(k, v) for k, v in (model or {}).items() if v is not None]
    rows += [("images scored", f"{n:,}"), ("threshold on anomaly score", _number(threshold))]
    if contamination is not None:
        rows.append(("calibrated to flag", f"{contamination:.2%} of normal images"))
    return _table(rows, "t kv")


def _explanation(contamination: float | None, has_p: bool, has_metrics: bool) -> str:
    rule = "anomaly score is above the threshold"
    if has_p and contamination is not None:
        rule += f", i.e. its p-value is at most {contamination:g}"
    text = ("Anomaly score: higher = more anomalous; it is minus the score column of the scores file "
            "(score_samples, higher = more normal, as for tables). "
            "p-value: the share of held-out normal training images that scored at least as high (small = "
            f"unusual). An image is flagged when its {rule}.")
    if has_metrics:
        text += (" Metrics come from the folder's labels (good = normal) and masks; best F1 picks its threshold "
                 "with the labels and is optimistic.")
    return f"<p class='note'>{html.escape(text)}</p>"


def _legend(low: float, high: float, with_masks: bool) -> str:
    from matplotlib import colormaps

    cmap = colormaps[COLORMAP]
    stops = ",".join(f"rgba({r * 255:.0f},{g * 255:.0f},{b * 255:.0f},{_opacity(t):.2f}) {t:.0%}"
                     for t in np.linspace(0, 1, 11) for r, g, b, _ in [cmap(t)])
    mask = "<span class='mask'></span><span>ground-truth mask</span>" if with_masks else ""
    return (f"<div class='legend'><span>anomaly map</span><span>{low:.3g}</span>"
            f"<div class='bar' style='background:linear-gradient(to right,{stops}),#808080'></div>"
            f"<span>{high:.3g}</span>{mask}</div>"
            f"<p class='note'>One colour scale for every card (the 1st to the 99.9th percentile of all map values): "
            f"at {low:.3g} and below the image shows as it is; colour and opacity grow up to {high:.3g}.</p>")


def _threshold_line(threshold: float, n_flagged: int) -> str:
    if not math.isfinite(threshold) or abs(threshold) > 1e300:
        text = f"no threshold: {_number(threshold)[6:]}; none is flagged"
    elif n_flagged:
        text = f"threshold {_number(threshold)}: images above are flagged ({n_flagged}), images below are not"
    else:
        text = f"threshold {_number(threshold)}: no image scores above it, none is flagged"
    return f"<div class='threshold'>{html.escape(text)}</div>"


def _card(rank: int, file: str, kind: str, score: float, p_value: float | None, flagged: bool, png: bytes) -> str:
    flag = "<span class='flag'>flagged</span>" if flagged else ""
    p_text = "-" if p_value is None or not math.isfinite(p_value) else f"{p_value:.3g}"
    name = html.escape(str(file))
    return (f"<figure class='card{' flagged' if flagged else ''}'><img alt=\"{name}\" src=\"{png_uri(png)}\">"
            f"<figcaption>{flag}<b>#{rank}</b> {html.escape(str(kind))}<div class='file'>{name}</div>"
            f"anomaly score <b>{score:.4g}</b> &middot; p-value {p_text}</figcaption></figure>")


def _thumbnail(image: np.ndarray, heat: np.ndarray, mask: np.ndarray | None, low: float, high: float,
               side: int = THUMBNAIL) -> bytes:
    """PNG of the image ``(H, W[, 3])`` with ``heat`` ``(H, W)`` blended over it and ``mask``'s outline,
    at most ``side`` pixels on its longer side (small images are enlarged by whole factors)."""
    from matplotlib import colormaps
    from PIL import Image

    base = as_rgb(image).astype(np.float32)
    t = np.clip((heat - low) / (high - low), 0, 1)
    colour = colormaps[COLORMAP](t)[..., :3].astype(np.float32) * 255
    alpha = _opacity(t)[..., None].astype(np.float32)
    picture = Image.fromarray(np.round(base * (1 - alpha) + colour * alpha).astype(np.uint8))
    h, w = heat.shape
    factor = side / max(h, w)
    size = (w, h)
    if factor < 1:
        size = (max(1, round(w * factor)), max(1, round(h * factor)))
        picture = picture.resize(size, Image.Resampling.BOX)
    elif factor >= 2:
        size = (w * int(factor), h * int(factor))
        picture = picture.resize(size, Image.Resampling.NEAREST)
    if mask is not None and mask.any():
        cover = Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.BOX)
        pixels = np.array(picture)
        pixels[_outline(np.asarray(cover) > 0)] = OUTLINE_RGB
        picture = Image.fromarray(pixels)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _opacity(t):
    """Heatmap opacity at scaled map values ``t`` in [0, 1] (any shape)."""
    return MAX_OPACITY * np.square(t)


def _outline(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` ``(H, W)`` with a 4-neighbour outside it (the image's edge counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner
