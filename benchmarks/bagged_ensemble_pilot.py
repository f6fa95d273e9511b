"""Pilot: three MAFs fitted on *different* early-stopping splits (bagging), mixed as in FlowEnsembleDetector(n_flows=3).

Honest-threshold design: a common 10% slice of the training rows is held out from every member
(for a threshold; ROC-AUC does not need one); each member is a default ``FlowDetector`` with its
own ``random_state``, so its own validation split of the remaining rows. Prints and appends one
row per (set, seed): ROC-AUC of the mixture (``bag3``) and of the first member alone (``bag_single``).

Usage (oneclass protocol, seeds 0-2, sets capped at 10,000 rows):
    python benchmarks/bagged_ensemble_pilot.py Hepatitis,Stamps docs/results/bench/flow_ensemble/bagged_pilot.jsonl

The committed results cover all 43 classical sets (run in two shards appending to one file).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from scipy.special import logsumexp

from flowad.datasets import adbench_root, load_npz_folder, split, subsample
from flowad.evaluation.tabular_metrics import roc_auc
from flowad.models import FlowDetector


def _roc(y: np.ndarray, loglik: np.ndarray) -> float:
    return roc_auc(y, -np.where(np.isfinite(loglik), loglik, -1e300))


def main(names: list[str], out_path: str) -> None:
    torch.set_num_threads(1)
    files = load_npz_folder(adbench_root("classical"))
    with open(out_path, "a") as out:
        for name in names:
            with np.load(files[name]) as data:
                X, y = subsample(data["X"].astype(np.float64), data["y"].astype(int), 10_000)
            for seed in (0, 1, 2):
                X_train, X_test, y_test = split("oneclass", X, y, random_state=seed)
                perm = np.random.default_rng([seed, 99]).permutation(len(X_train))
                n_threshold = max(int(0.1 * len(X_train)), 2)
                fit_rows = X_train[perm[n_threshold:]]  # perm[:n_threshold]: the common threshold slice
                ll = np.stack([FlowDetector(random_state=1000 * (seed + 1) + k).fit(fit_rows).log_likelihood(X_test)
                               for k in range(3)])
                row = {"dataset": name, "seed": seed, "bag3": _roc(y_test, logsumexp(ll, 0)),
                       "bag_single": _roc(y_test, ll[0])}
                out.write(json.dumps(row) + "\n")
                out.flush()
                print(row, flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","), sys.argv[2])
