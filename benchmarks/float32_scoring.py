"""Float32 against float64 scoring of the default flow, on every classical set of the suite.

The default ``FlowDetector`` runs its flow's network in float32 when scoring (preprocessing, tail
map and log-Jacobian sums stay float64). This checks that choice on the suite's own data: one fit
per set (the one-class protocol of ``make bench-oneclass``: at most 10,000 rows, seed 0), the test
rows scored by the same weights in both precisions. Per set: the largest relative score difference
``|s32 - s64| / max(1, |s64|)``, the share of test-row pairs whose order differs, Spearman's rank
correlation, and ROC-AUC in both. Writes ``docs/results/speed/float32_scoring.md`` and ``.jsonl``
(a rerun skips finished sets).

Usage: python benchmarks/float32_scoring.py [--datasets cardio,thyroid] [--out docs/results/speed]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from flowad import FlowDetector
from flowad.core.threads import torch_threads
from flowad.datasets import list_adbench, load_adbench, oneclass_split, subsample
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog
from flowad.evaluation.tabular_metrics import roc_auc
from flowad.models.tabular_flow.torch_model import FlowScoring

MAX_ROWS = 10_000


def discordant_share(a: np.ndarray, b: np.ndarray) -> float:
    """Share of pairs ``(i, j)`` that ``a`` and ``b`` order differently (ties in one but not the
    other count as differing); exact, by sorting on ``a`` and counting inversions of ``b``."""
    order = np.lexsort((b, a))
    ranks = np.argsort(np.argsort(b[order], kind="stable"), kind="stable")
    inversions = _inversions(list(ranks))
    n = len(a)
    return inversions / max(1, n * (n - 1) // 2)


def _inversions(values: list[int]) -> int:
    if len(values) < 2:
        return 0
    mid = len(values) // 2
    left, right = values[:mid], values[mid:]
    count = _inversions(left) + _inversions(right)
    left.sort()
    right.sort()
    j = 0
    for v in left:  # pairs (v in left, w in right) with v > w
        while j < len(right) and right[j] < v:
            j += 1
        count += j
    return count


def run(name: str) -> dict:
    X, y = subsample(*load_adbench(name), MAX_ROWS)
    X_train, X_test, y_test = oneclass_split(X, y, random_state=0)
    detector = FlowDetector(random_state=0).fit(X_train)
    graph = detector.scoring_
    graphs = {dtype: FlowScoring(detector.scaler_, detector.projection_, detector.flow_, "nll",
                                 network_dtype=dtype) for dtype in (torch.float64, torch.float32)}
    rows = torch.as_tensor(X_test, dtype=torch.float64)
    with torch.no_grad(), torch_threads(1):
        s64, s32 = (graphs[d](rows).numpy() for d in (torch.float64, torch.float32))
    assert np.array_equal(s32, graph(rows).detach().numpy()), "the detector's graph is the float32 one"
    relative = np.abs(s32 - s64) / np.maximum(1.0, np.abs(s64))
    row = {"dataset": name, "n_test": len(X_test), "max_relative_difference": float(relative.max()),
           "discordant_pair_share": discordant_share(s64, s32), "spearman": float(spearmanr(s64, s32)[0]),
           "roc_auc_float64": roc_auc(y_test, -s64), "roc_auc_float32": roc_auc(y_test, -s32)}
    print(row, flush=True)
    return row


def summarize(path: Path) -> str:
    rows = pd.DataFrame(ResultsLog(path, ("dataset",)).rows()).sort_values("dataset")
    rows["roc_auc_change"] = rows["roc_auc_float32"] - rows["roc_auc_float64"]
    lines = ["# Float32 scoring against float64, default flow, every classical set\n",
             f"One-class protocol at seed 0, at most {MAX_ROWS:,} rows per set; the same fitted weights score "
             "the test rows with the flow's network in float64 and in float32 (preprocessing and log-density "
             "sums float64 in both). Relative difference: `|s32 - s64| / max(1, |s64|)`. Discordant pairs: "
             "share of test-row pairs ordered differently.\n",
             f"- sets: {len(rows)}; largest relative difference {rows['max_relative_difference'].max():.2e}; "
             f"sets with every pair in the same order: {(rows['discordant_pair_share'] == 0).sum()}; largest "
             f"share of discordant pairs {rows['discordant_pair_share'].max():.2e}; lowest Spearman "
             f"{rows['spearman'].min():.8f}; largest ROC-AUC change {rows['roc_auc_change'].abs().max():.1e}; "
             f"mean ROC-AUC float64 {rows['roc_auc_float64'].mean():.4f}, "
             f"float32 {rows['roc_auc_float32'].mean():.4f}.\n",
             markdown_table(_formatted(rows)), ""]
    text = "\n".join(lines)
    path.with_suffix(".md").write_text(text)
    return text


def _formatted(rows: pd.DataFrame) -> pd.DataFrame:
    """Small differences in scientific notation, ROC-AUC to 4 decimals (as strings, for the table)."""
    table = rows.copy()
    for column in ("max_relative_difference", "discordant_pair_share", "roc_auc_change"):
        table[column] = table[column].map(lambda v: f"{v:.1e}")
    table["spearman"] = table["spearman"].map(lambda v: f"{v:.8f}")
    for column in ("roc_auc_float64", "roc_auc_float32"):
        table[column] = table[column].map(lambda v: f"{v:.4f}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=None, help="comma-separated; default: every classical set")
    parser.add_argument("--out", default="docs/results/speed")
    parser.add_argument("--summarize", action="store_true", help="only rewrite the table from the results")
    args = parser.parse_args()
    path = Path(args.out) / "float32_scoring.jsonl"
    if not args.summarize:
        torch.set_num_threads(1)
        log = ResultsLog(path, ("dataset",))
        for name in args.datasets.split(",") if args.datasets else list_adbench("classical"):
            if not log.done((name,)):
                log.append(run(name))
    print(summarize(path))


if __name__ == "__main__":
    main()
