"""What every study writes: a Markdown page (claim, settings, numbers, verdict, figures) and a JSON
file with the numbers, both under the study's output folder; figures are small PNGs (matplotlib Agg).
"""

from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from flowad._version import __version__  # noqa: E402

__all__ = ["DPI", "StudyPage", "auc", "md_table", "overlaid_hist", "save_figure", "verdict"]

#: Resolution of every study figure (small PNGs, committed to the repository).
DPI = 70


def save_figure(fig: plt.Figure, out_dir: str | Path, name: str) -> str:
    """Write ``fig`` as ``out_dir/name`` (PNG), close it and return the file name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out / name, dpi=DPI)
    plt.close(fig)
    return name


def auc(normal_scores: np.ndarray, anomalous_scores: np.ndarray) -> float:
    """ROC-AUC of anomaly scores (higher = more anomalous) of normal ``(N,)`` vs anomalous ``(M,)`` items."""
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomalous_scores))]
    return float(roc_auc_score(y, np.r_[normal_scores, anomalous_scores]))


def overlaid_hist(ax: plt.Axes, groups: dict[str, np.ndarray], bins: int = 30, clip_quantile: float = 0.995) -> None:
    """Overlaid density histograms of several ``(n,)`` arrays on shared bins (outer tails piled into
    the edge bins so one far-off value cannot squash the rest)."""
    values = np.concatenate([np.asarray(v, float) for v in groups.values()])
    lo, hi = np.quantile(values, 1 - clip_quantile), np.quantile(values, clip_quantile)
    edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    for label, v in groups.items():
        ax.hist(np.clip(v, lo, hi), bins=edges, alpha=0.55, density=True, label=label)
    ax.tick_params(labelsize=7)


def md_table(rows: list[dict], digits: int = 3) -> str:
    """A list of dicts (same keys) as a GitHub Markdown table, floats rounded to ``digits``."""
    if not rows:
        return "(no rows)\n"
    columns = list(rows[0])

    def cell(value) -> str:
        if isinstance(value, float | np.floating):
            if not math.isfinite(value):
                return "n/a"
            small = value != 0 and abs(value) < 10.0**-digits  # would round to 0: keep its size visible
            return f"{value:.2e}" if small else f"{value:.{digits}f}"
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def verdict(reproduced: bool | None) -> str:
    """The verdict word of a claim: ``reproduced``, ``did not reproduce`` or ``not tested`` (None)."""
    return "not tested" if reproduced is None else ("reproduced" if reproduced else "did not reproduce")


def _plain(value):
    """JSON-safe copy: NumPy scalars and arrays to Python, non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class StudyPage:
    """The page of one study.

    Attributes:
        name: File stem (``<name>.md``, ``<name>.json``).
        title: Page heading.
        claim: The published claim, with its source (title and arXiv id where there is one).
        setup: How flowad tested it (data, models, settings).
        sections: ``(heading, markdown)`` pairs: tables and what they show.
        verdicts: ``(claim part, verdict word, the numbers behind it)`` triples.
        figures: PNG file names in the same folder.
        numbers: Everything measured (written to the JSON file).
    """

    name: str
    title: str
    claim: str
    setup: str
    sections: list[tuple[str, str]] = field(default_factory=list)
    verdicts: list[tuple[str, str, str]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    numbers: dict = field(default_factory=dict)

    def write(self, out_dir: str | Path, quick: bool, random_state: int, seconds: float) -> Path:
        """Write ``<name>.md`` and ``<name>.json`` into ``out_dir``; returns the Markdown path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        machine = (f"{platform.platform()}, {torch.get_num_threads()} torch thread(s), flowad {__version__}, "
                   f"seed {random_state}{', --quick settings (not the published numbers)' if quick else ''}")
        lines = [f"# {self.title}", "", f"**Published claim.** {self.claim}", "", f"**Setup.** {self.setup}", "",
                 "## Verdict", "", md_table([{"claim": c, "verdict": v, "measured": m} for c, v, m in self.verdicts])]
        for heading, body in self.sections:
            lines += [f"## {heading}", "", body.rstrip(), ""]
        if self.figures:
            lines += ["## Figures", ""] + [f"![{f}]({f})" for f in self.figures] + [""]
        lines += [f"Run: `flowad study {self.name}{' --quick' if quick else ''} --seed {random_state}` in "
                  f"{seconds:.0f} s ({machine}).", ""]
        path = out / f"{self.name}.md"
        path.write_text("\n".join(lines))
        record = {"name": self.name, "quick": quick, "random_state": random_state, "seconds": seconds,
                  "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
                  "verdicts": [{"claim": c, "verdict": v, "measured": m} for c, v, m in self.verdicts],
                  "figures": self.figures, "numbers": self.numbers}
        (out / f"{self.name}.json").write_text(json.dumps(_plain(record), indent=2))
        return path
