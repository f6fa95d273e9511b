"""Small inline SVG charts for self-contained HTML reports (no plotting library, no JavaScript).

Two kinds, enough for detection reports: overlaid score histograms with a threshold line, and
curves (ROC, precision-recall). Scores of likelihood models can span many orders of magnitude
(a far outlier at -1e5 nats beside normal rows at -5), so histograms show the range where most
rows lie and count the rows beyond it in the legend instead of squeezing every bar into one bin.

Example:
    >>> import numpy as np
    >>> svg = histogram_svg({"normal": np.random.default_rng(0).normal(size=100)}, threshold=-2.0)
    >>> svg.startswith("<svg") and "threshold" in svg
    True
"""

from __future__ import annotations

import html
import math

import numpy as np

__all__ = ["COLORS", "curve_svg", "histogram_svg", "nice_ticks"]

#: Colours of the series, in order (colour-blind safe: Okabe and Ito).
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
_W, _H = 520, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 58, 16, 30, 44


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round tick values covering ``[low, high]``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low]
    step = 10 ** math.floor(math.log10((high - low) / count))
    for factor in (1, 2, 2.5, 5, 10):
        if (high - low) / (step * factor) <= count:
            step *= factor
            break
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e5 or abs(value) < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


class _Frame:
    """Plot area and axis scales."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float]) -> None:
        self.x0, self.x1 = x if x[1] > x[0] else (x[0] - 0.5, x[0] + 0.5)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0], y[0] + 1)

    def px(self, x: float) -> float:
        return _LEFT + (x - self.x0) / (self.x1 - self.x0) * (_W - _LEFT - _RIGHT)

    def py(self, y: float) -> float:
        return _H - _BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (_H - _TOP - _BOTTOM)

    def axes(self, xlabel: str, ylabel: str, xticks: list[float], yticks: list[float]) -> list[str]:
        parts = [f'<rect x="{_LEFT}" y="{_TOP}" width="{_W - _LEFT - _RIGHT}" height="{_H - _TOP - _BOTTOM}" '
                 f'fill="none" stroke="#999"/>']
        for t in xticks:
            x = self.px(t)
            parts.append(f'<line x1="{x:.1f}" y1="{_H - _BOTTOM}" x2="{x:.1f}" y2="{_H - _BOTTOM + 4}" stroke="#666"/>'
                         f'<text x="{x:.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">{_label(t)}</text>')
        for t in yticks:
            y = self.py(t)
            parts.append(f'<line x1="{_LEFT - 4}" y1="{y:.1f}" x2="{_LEFT}" y2="{y:.1f}" stroke="#666"/>'
                         f'<text x="{_LEFT - 7}" y="{y + 4:.1f}" text-anchor="end">{_label(t)}</text>')
        parts.append(f'<text x="{(_LEFT + _W - _RIGHT) / 2}" y="{_H - 8}" text-anchor="middle">'
                     f'{html.escape(xlabel)}</text>')
        parts.append(f'<text transform="translate(14 {(_TOP + _H - _BOTTOM) / 2}) rotate(-90)" '
                     f'text-anchor="middle">{html.escape(ylabel)}</text>')
        return parts


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_W} {_H}" width="{_W}" height="{_H}" '
            f'role="img" aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">'
            f'<title>{html.escape(title)}</title>{"".join(parts)}</svg>')


def _legend(entries: list[tuple[str, str]]) -> list[str]:
    parts, x = [], _LEFT + 6
    for color, text in entries:
        parts.append(f'<rect x="{x}" y="9" width="10" height="10" fill="{color}" fill-opacity="0.6"/>'
                     f'<text x="{x + 14}" y="18">{html.escape(text)}</text>')
        x += 24 + 6.2 * len(text)
    return parts


def histogram_svg(groups: dict[str, np.ndarray], threshold: float | None = None, *, xlabel: str = "score",
                  title: str = "score histogram", bins: int = 40, coverage: float = 0.99) -> str:
    """Overlaid, normalised histograms of score groups, with an optional threshold line.

    Args:
        groups: Name -> finite scores ``(n,)`` (e.g. ``{"normal": ..., "anomaly": ...}``).
        threshold: Drawn as a vertical dashed line when it lies in the shown range.
        xlabel: Axis label.
        title: Accessible title of the figure.
        bins: Number of bars.
        coverage: The shown range spans the central ``coverage`` of the pooled scores, at most 8
            interquartile ranges from their median, and the threshold; rows beyond it are counted
            in the legend.
    """
    values = {k: np.asarray(v, dtype=np.float64) for k, v in groups.items() if len(v)}
    pooled = np.concatenate(list(values.values())) if values else np.zeros(1)
    tail = (1 - coverage) / 2
    low, high = np.quantile(pooled, [tail, 1 - tail]) if len(pooled) > 1 else (pooled[0], pooled[0])
    if len(pooled) > 3 and np.isfinite(pooled).all():  # heavy tails (log-likelihoods): keep the bulk readable
        q25, median, q75 = np.quantile(pooled, [0.25, 0.5, 0.75])
        if q75 > q25:
            low, high = max(low, median - 8 * (q75 - q25)), min(high, median + 8 * (q75 - q25))
    if threshold is not None and math.isfinite(threshold) and np.isfinite(pooled).all():
        low, high = min(low, threshold), max(high, threshold)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    heights = {k: np.histogram(v[(v >= low) & (v <= high)], edges)[0] / len(v) for k, v in values.items()}
    top = max((h.max() for h in heights.values()), default=1.0) * 1.08
    frame = _Frame((low, high), (0.0, top))
    parts = frame.axes(xlabel, "share of rows", nice_ticks(low, high), nice_ticks(0.0, top, 4))
    legend = []
    for (name, h), color in zip(heights.items(), COLORS, strict=False):
        for left, right, height in zip(edges[:-1], edges[1:], h, strict=True):
            if height > 0:
                y = frame.py(height)
                width = frame.px(right) - frame.px(left)
                parts.append(f'<rect x="{frame.px(left):.1f}" y="{y:.1f}" width="{width:.1f}" '
                             f'height="{frame.py(0) - y:.1f}" fill="{color}" fill-opacity="0.45"/>')
        v = values[name]
        beyond = int(((v < low) | (v > high)).sum())
        legend.append((color, f"{name} ({len(v)}" + (f", {beyond} beyond the axis)" if beyond else ")")))
    if threshold is not None and low <= threshold <= high:
        x = frame.px(threshold)
        parts.append(f'<line x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{_H - _BOTTOM}" stroke="#000" '
                     f'stroke-dasharray="5 3"/>')
        right_half = x > (frame.px(low) + frame.px(high)) / 2  # the label goes where there is room
        parts.append(f'<text x="{x - 4 if right_half else x + 4:.1f}" y="{_TOP + 12}" '
                     f'text-anchor="{"end" if right_half else "start"}">threshold</text>')
    return _svg(parts + _legend(legend), title)


def curve_svg(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, xlabel: str, ylabel: str, title: str,
              diagonal: bool = False) -> str:
    """Line curves on the unit square (ROC: ``diagonal=True`` draws the chance line).

    Args:
        curves: Name -> ``(x, y)``, each ``(n,)`` in [0, 1].
    """
    frame = _Frame((0.0, 1.0), (0.0, 1.0))
    ticks = [0.0, 0.25, 0.5, 0.75, 1.0]
    parts = frame.axes(xlabel, ylabel, ticks, ticks)
    if diagonal:
        parts.append(f'<line x1="{frame.px(0)}" y1="{frame.py(0)}" x2="{frame.px(1)}" y2="{frame.py(1)}" '
                     f'stroke="#bbb" stroke-dasharray="3 3"/>')
    legend = []
    for (name, (x, y)), color in zip(curves.items(), COLORS, strict=False):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if len(x) > 400:  # keep the page small; the curve's shape survives
            keep = np.unique(np.linspace(0, len(x) - 1, 400).round().astype(int))
            x, y = x[keep], y[keep]
        points = " ".join(f"{frame.px(a):.1f},{frame.py(b):.1f}" for a, b in zip(x, y, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        legend.append((color, name))
    return _svg(parts + _legend(legend), title)
