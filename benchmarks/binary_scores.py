"""Why the flow trails a single Gaussian on all-binary columns: the scores of one flow fit beside
simple models of the same rows, on ADBench's celeba (39 yes/no attributes).

Part ``scores`` (3 seeds, one-class protocol, 10,000 rows as in the suite): one default flow per
seed, and from the same training rows
- ``independent``: the log-likelihood of independent Bernoulli columns, ``sum_j log p_j(x_j)``;
- ``diagonal_gaussian``: minus the squared standardised distance, ``-sum_j (x_j - p_j)^2 / s_j^2``,
  which for a 0/1 column is ``-(1 - p_j) / p_j`` for a rare value (``x_j = 1``, ``p_j`` small)
  where ``independent`` charges ``log p_j``;
- ``gaussian``: minus the Mahalanobis distance under the empirical covariance;
- ``flow_minus_independent`` and ``gaussian_minus_diagonal``: what each model adds to its
  independent version (the dependencies it learned), as scores of their own.

Part ``variants`` (seed 0): the flow with smoother targets (more noise; no dequantisation) and
less capacity. ROC-AUC of each score (higher = more normal, anomalies ranked by the lowest).

Writes ``binary_scores.md`` and ``binary_scores.jsonl`` under ``--out`` (a rerun skips done rows).

Usage: python benchmarks/binary_scores.py [--dataset celeba] [--out docs/results/bench/binary_scores]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.covariance import EmpiricalCovariance
from sklearn.metrics import roc_auc_score

from flowad import FlowDetector
from flowad.core.threads import torch_threads
from flowad.datasets import load_adbench
from flowad.datasets.splits import split, subsample
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog
from flowad.models.tabular_flow.options import FlowOptions

SEEDS = (0, 1, 2)
VARIANTS = {
    "default": {},
    "noise_std 0.2": {"noise_std": 0.2},
    "noise_std 0.5": {"noise_std": 0.5},
    "no dequantisation, noise_std 0.3": {"noise_std": 0.3, "options": FlowOptions(dequantize=False)},
    "hidden 16 x 16": {"hidden_features": (16, 16)},
    "2 transforms": {"transforms": 2},
}


def simple_scores(train: np.ndarray, rows: np.ndarray) -> dict[str, np.ndarray]:
    """Scores ``(M,)`` of ``rows`` ``(M, d)`` under independent Bernoulli columns and Gaussians
    fitted to 0/1 ``train`` rows ``(N, d)`` (higher = more normal).

    Example:
        >>> train = np.array([[0, 0], [0, 1], [1, 0], [0, 0]] * 5, dtype=float)
        >>> s = simple_scores(train, np.array([[0.0, 0.0], [1.0, 1.0]]))
        >>> bool(s["independent"][0] > s["independent"][1]), bool(s["diagonal_gaussian"][0] > s["diagonal_gaussian"][1])
        (True, True)
    """
    p = np.clip(train.mean(0), 1e-3, 1 - 1e-3)
    spread = train.std(0) + 1e-9
    return {"independent": (rows * np.log(p) + (1 - rows) * np.log(1 - p)).sum(1),
            "diagonal_gaussian": -(((rows - train.mean(0)) / spread) ** 2).sum(1),
            "gaussian": -EmpiricalCovariance().fit(train).mahalanobis(rows)}


def flow_fit(train: np.ndarray, **params) -> tuple[FlowDetector, float]:
    """One flow fitted on every training row (no calibration fits: only the scores are compared)."""
    detector = FlowDetector(random_state=0, **params)
    start = time.perf_counter()
    detector._fit_uncalibrated(train)
    return detector, time.perf_counter() - start


def score_rows(dataset: str, seed: int, X: np.ndarray, y: np.ndarray) -> dict:
    train, test, labels = split("oneclass", X, y, random_state=seed)
    scores = simple_scores(train, test)
    detector, _ = flow_fit(train)
    scores["flow"] = detector.score_samples(test)
    scores["flow_minus_independent"] = scores["flow"] - scores["independent"]
    scores["gaussian_minus_diagonal"] = scores["gaussian"] - scores["diagonal_gaussian"]
    return {"part": "scores", "dataset": dataset, "seed": seed, "variant": None,
            **{name: roc_auc_score(labels, -values) for name, values in scores.items()}}


def variant_row(dataset: str, name: str, X: np.ndarray, y: np.ndarray) -> dict:
    train, test, labels = split("oneclass", X, y, random_state=0)
    detector, seconds = flow_fit(train, **VARIANTS[name])
    scores = detector.score_samples(test)
    return {"part": "variants", "dataset": dataset, "seed": 0, "variant": name,
            "roc_auc": roc_auc_score(labels, -scores), "fit_seconds": seconds,
            "epochs": len(detector.history_.validation_loss), "best_epoch": detector.history_.best_epoch,
            "train_log_likelihood": float(np.mean(detector.score_samples(train))),
            "test_normal_log_likelihood": float(np.mean(scores[labels == 0]))}


def report(frame: pd.DataFrame, dataset: str) -> str:
    lines = [f"# Scores on all-binary columns ({dataset})", "",
             "Written by `benchmarks/binary_scores.py`; one-class protocol, 10,000 rows, one torch thread. "
             "ROC-AUC; each flow is the default one (random_state 0) fitted on every training row.", ""]
    scores = frame[frame.part == "scores"]
    if len(scores):
        columns = ["flow", "independent", "diagonal_gaussian", "gaussian", "flow_minus_independent",
                   "gaussian_minus_diagonal"]
        table = scores[["seed", *columns]].sort_values("seed").astype({"seed": str})
        mean = pd.DataFrame([{"seed": "mean", **scores[columns].mean().to_dict()}])
        lines += ["## One fit, several scores", "", markdown_table(pd.concat([table, mean])), ""]
    variants = frame[frame.part == "variants"]
    if len(variants):
        variants = variants.astype({"epochs": int, "best_epoch": int})
        lines += ["## The flow with smoother targets or less capacity (seed 0)", "",
                  markdown_table(variants[["variant", "roc_auc", "epochs", "best_epoch", "train_log_likelihood",
                                           "test_normal_log_likelihood", "fit_seconds"]]), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="celeba")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/results/bench/binary_scores"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(args.out / "binary_scores.jsonl", key=("part", "dataset", "seed", "variant"))
    X, y = load_adbench(args.dataset)
    X, y = subsample(X, y, 10_000)
    with torch_threads(args.threads):
        for seed in SEEDS:
            if not log.done(("scores", args.dataset, seed, None)):
                row = score_rows(args.dataset, seed, X, y)
                print(row, flush=True)
                log.append(row)
        for name in VARIANTS:
            if not log.done(("variants", args.dataset, 0, name)):
                row = variant_row(args.dataset, name, X, y)
                print(row, flush=True)
                log.append(row)
    frame = pd.DataFrame(log.rows())
    (args.out / "binary_scores.md").write_text(report(frame[frame.dataset == args.dataset], args.dataset))
    print(f"wrote {args.out / 'binary_scores.md'}")


if __name__ == "__main__":
    main()
