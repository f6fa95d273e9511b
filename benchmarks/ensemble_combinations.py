"""How should three flows be combined? One ``FlowEnsembleDetector(n_flows=3)`` fit per (set, seed), scored four ways.

The same three MAFs (a bagged ensemble: each flow has its own random start and its own
training / early-stopping split of the rows left after the common threshold slice) give, per test row:
- ``single``: the first flow alone (trained on about 81% of the training rows, where ``n_flows=1``
  trains on 90%);
- ``mix``: the mixture density ``log((1/3) sum_k p_k(x))`` (``combine="mixture"``; exact);
- ``meanlog``: the mean of the three log-densities (``combine="geometric"``; not normalised);
- ``minlog``: the lowest of the three log-densities (a row is as normal as its harshest flow says).

Usage:
    python benchmarks/ensemble_combinations.py --out docs/results/bench/flow_ensemble/combinations.jsonl
    python benchmarks/ensemble_combinations.py --summarize docs/results/bench/flow_ensemble/combinations.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowad.datasets import adbench_root, load_npz_folder, split, subsample
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog
from flowad.evaluation.tabular_metrics import roc_auc
from flowad.models import FlowDetector, FlowEnsembleDetector

COMBINATIONS = ("single", "mix", "meanlog", "minlog")


def combined_scores(det: FlowDetector, X: np.ndarray) -> dict[str, np.ndarray]:
    """Log-density scores ``(N,)`` of rows ``X`` under each combination of ``det``'s flows."""
    inputs, extra, _ = det._terms(X)
    with torch.no_grad():
        members = np.stack([m().log_prob(inputs).numpy() + extra for m in det.flow_.members])
        mix = det.flow_().log_prob(inputs).numpy() + extra
    return {"single": members[0], "mix": mix, "meanlog": members.mean(0), "minlog": members.min(0)}


def summarize(path: Path, report: Path) -> None:
    rows = pd.DataFrame([json.loads(line) for line in path.read_text().splitlines()])
    per_set = rows.groupby("dataset").agg({**{c: "mean" for c in COMBINATIONS}, "seed": "count"})
    per_set = per_set.rename(columns={"seed": "seeds"})
    per_set.loc["mean"] = [*per_set[list(COMBINATIONS)].mean(), per_set["seeds"].sum()]
    text = ["# Three flows, four ways to combine them (oneclass protocol)", "",
            "One bagged `FlowEnsembleDetector(n_flows=3)` per (set, seed); `single` is its first flow alone, "
            "`mix` and `meanlog` are `combine=\"mixture\"` and `combine=\"geometric\"`, `minlog` the "
            "lowest of the three log-densities. Mean ROC-AUC over the seeds run. "
            "Produced by `benchmarks/ensemble_combinations.py`.", "",
            markdown_table(per_set.round(3).reset_index(), 3)]
    report.write_text("\n".join(text) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default="cardio,Cardiotocography,Stamps,Pima,SpamBase,cover")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summarize", type=Path)
    parser.add_argument("--report", type=Path, default=Path("docs/results/bench/flow_ensemble/combinations.md"))
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.report)
        return
    torch.set_num_threads(1)
    files = load_npz_folder(adbench_root("classical"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(args.out, key=("dataset", "seed"))  # resume: finished (set, seed) pairs are skipped
    for name in args.datasets.split(","):
        with np.load(files[name]) as data:
            X, y = subsample(data["X"].astype(np.float64), data["y"].astype(int), 10_000)
        for seed in (int(s) for s in args.seeds.split(",")):
            if log.done((name, seed)):
                continue
            X_train, X_test, y_test = split("oneclass", X, y, random_state=seed)
            det = FlowEnsembleDetector(n_flows=3, random_state=seed).fit(X_train)
            row = {"dataset": name, "seed": seed}
            for combo, s in combined_scores(det, X_test).items():
                row[combo] = roc_auc(y_test, -np.where(np.isfinite(s), s, -1e300))
            log.append(row)
            print(row, flush=True)


if __name__ == "__main__":
    main()
