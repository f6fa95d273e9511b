"""The rare-event setting: a few anomalies are labelled in the training data. Do the two-class
loss (``TwoClassFlowDetector``) or the density ratio of two flows (``FlowRatioClassifier``) beat
the plain one-class flow?

ADBench's unsupervised split (stratified 70/30; the training part keeps its anomalies). The
one-class flow fits the training part unlabelled; the two-class flow and the ratio classifier get
1% or 5% of the training anomalies (at least one) labelled, the rest of the rows labelled 0 (the
ratio classifier's background, unlabelled anomalies included). Test on the 30%. Writes
``docs/results/synth/rare_labels.md`` and ``.jsonl``.

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
from flowad.models import FlowDetector, FlowRatioClassifier, TwoClassFlowDetector

DATASETS = "thyroid,cardio,satellite,shuttle,mammography,pendigits,magic.gamma,annthyroid"
#: (labelled share, model): the unlabelled one-class flow, then both label-using models per share.
JOBS = ((0.0, "one_class"), (0.01, "two_class"), (0.01, "ratio"), (0.01, "ratio_novelty"), (0.05, "two_class"),
        (0.05, "ratio"), (0.05, "ratio_novelty"))
#: The novelty weight of ``ratio_novelty``: half of the anomalies taken to be unlike the labelled ones.
NOVELTY = 0.5


def run(name: str, seed: int, share: float, model: str, max_rows: int) -> dict:
    X, y = subsample(*load_adbench(name), max_rows)
    train, test = unsupervised_indices(y, random_state=seed)
    X_train, X_test, y_train, y_test = X[train], X[test], y[train], y[test]
    anomalies = np.flatnonzero(y_train == 1)
    labels = np.zeros(len(X_train), np.int64)
    rng = np.random.default_rng(seed)  # one generator per (set, seed), drawn share after share: every
    for labelled_share in sorted({s for s, _ in JOBS if s > 0}):  # model at a share gets the same rows
        chosen = rng.choice(anomalies, max(1, int(round(labelled_share * len(anomalies)))), replace=False)
        if labelled_share == share:
            labels[chosen] = 1
    n_labelled = int(labels.sum())
    if model == "one_class":
        score = -FlowDetector(random_state=seed).fit(X_train).score_samples(X_test)
    elif model == "two_class":
        score = -TwoClassFlowDetector(negatives="labels", random_state=seed).fit(X_train, labels).score_samples(X_test)
    else:
        novelty = NOVELTY if model == "ratio_novelty" else 0.0
        score = FlowRatioClassifier(novelty=novelty, random_state=seed).fit(X_train, labels).decision_scores(X_test)
    row = {"dataset": name, "seed": seed, "labelled_share": share, "model": model, "n_labelled": n_labelled,
           "roc_auc": roc_auc(y_test, score), "pr_auc": pr_auc(y_test, score)}
    print(row, flush=True)
    return row


def _seeds_text(rows: pd.DataFrame) -> str:
    """``seeds [0, 1, 2]``, or which sets have which seeds when they differ."""
    per_set = rows.groupby("dataset")["seed"].apply(lambda s: tuple(sorted(set(s))))
    if per_set.nunique() == 1:
        return f"seeds {list(per_set.iloc[0])}"
    groups = per_set.groupby(per_set).groups
    return "seeds " + "; ".join(f"{list(seeds)} on {', '.join(sorted(names))}" for seeds, names in groups.items())


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
        log = ResultsLog(results, key=("dataset", "seed", "labelled_share", "model"))
        for name in args.datasets.split(",")[shard::n]:
            for seed in (int(s) for s in args.seeds.split(",")):
                for share, model in JOBS:
                    if not log.done((name, seed, share, model)):  # resume
                        log.append(run(name, seed, share, model, args.max_rows))
    rows = pd.DataFrame(read_rows(results))
    complete = rows.groupby(["dataset", "seed"])["model"].transform("size") == len(JOBS)
    rows = rows[complete]  # (set, seed) pairs that every model has run on
    rows["column"] = [("one-class flow, unlabelled" if share == 0 else f"{model.replace('_', '-')}, {share:.0%}")
                      for share, model in zip(rows.labelled_share, rows.model, strict=True)]
    order = ["one-class flow, unlabelled", "two-class, 1%", "ratio, 1%", "ratio-novelty, 1%", "two-class, 5%",
             "ratio, 5%", "ratio-novelty, 5%"]
    text = ["# Rare-event setting: a few anomalies labelled in training", "",
            "ADBench unsupervised split (70/30, stratified, training part keeps its anomalies), sets capped at "
            f"10,000 rows, {_seeds_text(rows)} (mean over seeds). One-class: "
            "`FlowDetector()` on the whole training part, unlabelled. 1% / 5%: that share of the training anomalies "
            "(at least one) labelled, the same rows for both models: `TwoClassFlowDetector(negatives=\"labels\")` "
            "lowers their likelihood; `FlowRatioClassifier()` fits a flow to them (started from, and shrunk "
            "toward, the flow of the other rows) and scores the log density ratio; `ratio-novelty`: the same with "
            f"`novelty={NOVELTY}` (half of the anomaly density spread evenly at the level of the other rows' 1% least "
            "likely, for anomalies unlike the labelled ones). Produced by "
            "`benchmarks/rare_labels.py`.", ""]
    for metric in ("roc_auc", "pr_auc"):
        table = rows.pivot_table(index="dataset", columns="column", values=metric)
        table = table[[c for c in order if c in table.columns]]
        table.loc["mean"] = table.mean()
        text += [f"## {metric.replace('_', '-').upper()}", "", markdown_table(table.reset_index()), ""]
    (args.out / "rare_labels.md").write_text("\n".join(text))


if __name__ == "__main__":
    main()
