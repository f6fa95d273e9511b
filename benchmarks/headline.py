"""Headline numbers from the benchmark folders under docs/results/bench (for the README).

Prints, per protocol: mean ROC-AUC and average rank per detector over the complete sets; the
eight sets the flow default was chosen on versus the other sets (never tuned on); and the best
classical detector per set.

Usage: python benchmarks/headline.py [docs/results/bench]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from flowad.evaluation.report import summarize

EIGHT = ["thyroid", "cardio", "satellite", "shuttle", "mammography", "pendigits", "magic.gamma", "annthyroid"]
CLASSICAL = ["iforest", "ocsvm", "elliptic", "lof"]


def main(root: Path) -> None:
    for folder in sorted(p for p in root.iterdir() if (p / "results.csv").exists()):
        results = pd.read_csv(folder / "results.csv")
        for protocol in results["protocol"].unique():
            s = summarize(results, protocol)
            print(f"\n## {folder.name} ({protocol}): {s['n_complete']} complete sets")
            print(s["summary"].round(3).to_string())
            table = s["roc_auc"].dropna()
            eight = table.loc[table.index.isin(EIGHT)]
            other = table.loc[~table.index.isin(EIGHT)]
            for label, part in (("eight tuning sets", eight), ("other sets (never tuned on)", other)):
                if len(part) == 0:
                    continue
                means = part.mean().sort_values(ascending=False)
                best_classical = part[[c for c in CLASSICAL if c in part]].max(axis=1).mean()
                print(f"{label} ({len(part)}): " + ", ".join(f"{k} {v:.3f}" for k, v in means.head(6).items())
                      + f"; best classical per set {best_classical:.3f}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/results/bench"))
