"""The rare-event setting: a few anomalies are labelled in the training data. Does two-class
training (``TwoClassFlowDetector``) beat the plain one-class flow?

ADBench's unsupervised split (stratified 70/30; the training part keeps its anomalies). The
one-class flow fits the training part unlabelled; the two-class flow gets 1% or 5% of the
training anomalies (at least one) labelled as negatives, the rest of the rows labelled 0. Test on
the 30%. Writes ``docs/results/synth/rare_labels.md`` and ``.jsonl``.

Usage: python benchmarks/rare_labels.py --datasets thyroid,cardio --seeds 0 --shard 0/2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowad.datasets import load_adbench, subsample
from flowad.datasets.splits import unsupervised_indices
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog, read_rows
from flowad.evaluation.tabular_metrics import pr_auc, roc_auc
from flowad.models import FlowDetector, TwoClassFlowDetector

DATASETS = "thyroid,cardio,satellite,shuttle,mammography,pendigits,magic.gamma,annthyroid"
SHARES = (0.0, 0.01, 0.05)


def run(name: str, seed: int, max_rows: int) -> list[dict]:
    X, y = subsample(*load_adbench(name), max_rows)
    rng = np.random.default_rng(seed)
    train, test = unsupervised_indices(y, random_state=seed)
    X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
    anomalies = np.flatnonzero(y_train == 1)
    rows = []
    for share in SHARES:
        if share == 0:
            detector = FlowDetector(random_state=seed).fit(X_train)
            n_labelled = 0
        else:
            n_labelled = max(1, int(round(share * len(anomalies))))
            labels = np.zeros(len(X_train), np.int64)
            labels[rng.choice(anomalies, n_labelled, replace=False)] = 1
            detector = TwoClassFlowDetector(negatives="labels", random_state=seed).fit(X_train, labels)
        score = -detector.score_samples(X_test)
        rows.append({"dataset": name, "seed": seed, "labelled_share": share, "n_labelled": n_labelled,
                     "roc_auc": roc_auc(y_test, score), "pr_auc": pr_auc(y_test, score)})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", default=DATASETS)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("docs/results/synth"))
    parser.add_argument("--summarize", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "rare_labels.jsonl"
    if not args.summarize:
        shard, n = (int(v) for v in args.shard.split("/"))
        log = ResultsLog(results, key=("dataset", "seed", "labelled_share"))
        for name in args.datasets.split(",")[shard::n]:
            for seed in (int(s) for s in args.seeds.split(",")):
                if log.done((name, seed, 0.0)):  # resume: (dataset, seed) pairs already written are skipped
                    continue
                for row in run(name, seed, args.max_rows):
                    log.append(row)
    rows = pd.DataFrame(read_rows(results))
    table = rows.pivot_table(index="dataset", columns="labelled_share", values=["roc_auc", "pr_auc"])
    table.columns = [f"{metric} {'unlabelled' if share == 0 else f'{share:.0%} labelled'}"
                     for metric, share in table.columns]
    table.loc["mean"] = table.mean()
    text = ["# Rare-event setting: a few anomalies labelled in training", "",
            "ADBench unsupervised split (70/30, stratified, training part keeps its anomalies), sets capped at "
            f"10,000 rows, seeds {sorted(rows.seed.unique().tolist())}. Unlabelled: one-class `FlowDetector()` on the "
            "whole training part. 1% / 5% labelled: that share of the training anomalies (at least one) marked as "
            "negatives for `TwoClassFlowDetector`. Produced by `benchmarks/rare_labels.py`.", "",
            markdown_table(table.reset_index())]
    (args.out / "rare_labels.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
