"""Ablation: which score should the default FlowDetector return?

One flow is fitted per (dataset, seed) under a protocol; every candidate score is computed from
that same fit, so the comparison isolates the score from training noise.

Candidates (higher = more normal):
- ``nll``: the log-likelihood (the default so far);
- ``tempered_a``: log-likelihood with the flow's log-det-Jacobian term scaled by ``a``
  (``a = 1`` is ``nll``, ``a = 0`` is the latent norm plus the preprocessing terms). The log-det
  term is what lets a flow give smooth, low-complexity anomalies high likelihood (Kirichenko et al.,
  "Why Normalizing Flows Fail to Detect Out-of-Distribution Data", NeurIPS 2020);
- ``latent_norm``, ``mahalanobis``: distances of the latent code;
- ``zcombo``: the sum of ``nll`` and ``latent_norm``, each standardised on the training rows;
- ``latent_knn``: distance to the 5th nearest training code in the latent space;
- ``input_knn``: distance to the 5th nearest training row in the flow's (scaled) input space;
- ``hybrid_z``: ``nll`` plus ``-log`` of ``input_knn``, each standardised on the training rows
  (the training rows' distances leave each row out);
- ``hybrid_logdens``: the flow's log-density plus the k-NN log-density estimate
  ``-d log r_k`` (a product of the two density estimates).

Usage:
    python benchmarks/score_variants.py --protocol oneclass --shard 0/2 --out runs/variants/oneclass_0.jsonl
    python benchmarks/score_variants.py --summarize runs/variants/oneclass_*.jsonl \
        --peers docs/results/bench/classical_oneclass/results.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import NearestNeighbors

from flowad.datasets import adbench_root, load_npz_folder, split, subsample
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog
from flowad.evaluation.tabular_metrics import roc_auc
from flowad.models import FlowDetector

ALPHAS = (0.0, 0.25, 0.5, 0.75)
#: The sets the defaults were chosen on; the others are the held-out check.
DEV_SETS = ("thyroid", "cardio", "satellite", "shuttle", "mammography", "pendigits", "magic.gamma", "annthyroid")


def components(det: FlowDetector, X: np.ndarray) -> dict[str, np.ndarray]:
    """Per-row score components of a fitted detector: log-likelihood, flow log-det, z, inputs."""
    graph = det.scoring_
    with torch.no_grad():
        x = torch.as_tensor(X, dtype=torch.float64)
        inputs, extra, residual = graph.flow_inputs(x)
        z, ladj = det.flow_().transform.call_and_ladj(inputs)  # the float64 flow
        loglik = graph.log_likelihood(x)
    return {
        "loglik": loglik.numpy(), "ladj": ladj.numpy(), "z": z.numpy(), "residual": residual.numpy(),
        "inputs": inputs.numpy(),
    }


def scores(
    det: FlowDetector, X: np.ndarray, train: dict, knn: NearestNeighbors, input_knn: NearestNeighbors
) -> dict[str, np.ndarray]:
    c = components(det, X)
    out = {"nll": c["loglik"]}
    for a in ALPHAS:
        out[f"tempered_{a}"] = c["loglik"] - (1 - a) * c["ladj"]
    out["latent_norm"] = -(c["z"] ** 2).sum(1) - c["residual"]
    centred = c["z"] - det.latent_mean_
    out["mahalanobis"] = -np.einsum("ij,jk,ik->i", centred, det.latent_precision_, centred) - c["residual"]
    ln_train = -(train["z"] ** 2).sum(1) - train["residual"]
    out["zcombo"] = (c["loglik"] - train["loglik"].mean()) / train["loglik"].std() + (
        out["latent_norm"] - ln_train.mean()
    ) / ln_train.std()
    out["latent_knn"] = -knn.kneighbors(c["z"])[0][:, -1]
    r_k = input_knn.kneighbors(c["inputs"])[0][:, -1]
    out["input_knn"] = -r_k
    log_r, log_r_train = np.log(r_k + 1e-12), np.log(train["r_k"] + 1e-12)
    out["hybrid_z"] = (c["loglik"] - train["loglik"].mean()) / train["loglik"].std() - (
        log_r - log_r_train.mean()
    ) / log_r_train.std()
    out["hybrid_logdens"] = c["loglik"] - c["inputs"].shape[1] * log_r
    return out


#: Weights of the k-NN term tried by :func:`weight_sweep`.
WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)


def weight_sweep(scores_dir: Path) -> pd.DataFrame:
    """Mean ROC-AUC of ``nll + w * (-d log r_5)`` per weight ``w`` (``w = 1``: ``hybrid_logdens``), on
    the development sets, the held-out sets and all, from the files ``--save-scores`` wrote."""
    rows = []
    for path in sorted(scores_dir.glob("*__*.npz")):
        name, seed = path.stem.rsplit("__", 1)
        with np.load(path) as data:
            y, nll, knn = data["y"], data["nll"], data["hybrid_logdens"] - data["nll"]
        row = {"dataset": name, "seed": int(seed)}
        for w in WEIGHTS:
            s = nll + w * knn
            row[w] = roc_auc(y, -np.where(np.isfinite(s), s, -1e300))
        rows.append(row)
    per_set = pd.DataFrame(rows).groupby("dataset")[list(WEIGHTS)].mean()
    dev = per_set.index.isin(DEV_SETS)
    return pd.DataFrame({"weight of the k-NN term": list(WEIGHTS),
                         f"{dev.sum()} development sets": per_set[dev].mean().to_numpy(),
                         f"{(~dev).sum()} held-out sets": per_set[~dev].mean().to_numpy(),
                         f"all {len(per_set)}": per_set.mean().to_numpy()})


def summarize(paths: list[Path], report: Path, peers: Path | None = None,
              peer_names: tuple[str, ...] = ("pyod_knn",), scores_dir: Path | None = None) -> None:
    """Mean ROC-AUC per score variant on the development sets, the held-out sets and all sets;
    with ``peers`` (a suite's ``results.jsonl``), those detectors' ROC-AUC on the same sets and seeds
    beside them, and head-to-head wins of each variant against the first peer."""
    rows = pd.DataFrame([json.loads(line) for p in paths for line in p.read_text().splitlines()])
    variants = [c for c in rows.columns if c not in ("dataset", "seed", "protocol", "fit_seconds")]
    if peers is not None:
        suite = pd.DataFrame([json.loads(line) for line in peers.read_text().splitlines() if line.strip()])
        suite = suite[suite["detector"].isin(peer_names) & suite["roc_auc"].notna()]
        wide = suite.pivot_table(index=["dataset", "seed"], columns="detector", values="roc_auc").reset_index()
        rows = rows.merge(wide, on=["dataset", "seed"], how="left")
        variants += [name for name in peer_names if name in rows]
    per_set = rows.groupby("dataset")[variants].mean()
    dev = per_set.index.isin(DEV_SETS)
    table = pd.DataFrame({
        f"{dev.sum()} development sets": per_set[dev].mean(),
        f"{(~dev).sum()} held-out sets": per_set[~dev].mean(),
        f"all {len(per_set)}": per_set.mean(),
    }).rename_axis("score").reset_index()
    protocol = rows["protocol"].iloc[0]
    text = [
        f"# Score ablation: one fitted MAF, several scores ({protocol} protocol)", "",
        f"ADBench classical suite, {len(per_set)} sets capped at 10,000 rows, seeds "
        f"{sorted(rows.seed.unique().tolist())}; one default `FlowDetector` per (set, seed), every score "
        "computed from that same fit. Mean ROC-AUC. Produced by `benchmarks/score_variants.py`.", "",
        markdown_table(table, 4),
    ]
    if peers is not None and peer_names[0] in per_set:
        rival = per_set[peer_names[0]]
        versus = pd.DataFrame({
            "score": [v for v in variants if v not in peer_names],
            f"sets better than {peer_names[0]}": [int((per_set[v] > rival).sum()) for v in variants
                                                  if v not in peer_names],
            f"sets worse than {peer_names[0]}": [int((per_set[v] < rival).sum()) for v in variants
                                                 if v not in peer_names],
        })
        text += [f"Head to head with {peer_names[0]} (from the suite run, same sets and seeds):", "",
                 markdown_table(versus, 0)]
    if scores_dir is not None and any(scores_dir.glob("*__*.npz")):
        text += ["How much the k-NN term weighs: `nll + w * (-d log r_5)` from the saved per-row scores "
                 "(`w = 1` is `hybrid_logdens`):", "", markdown_table(weight_sweep(scores_dir), 4)]
    text += ["Per set (mean over seeds):", "", markdown_table(per_set.round(3).reset_index(), 3)]
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", default="oneclass")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--datasets", default="")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th dataset starting at i")
    parser.add_argument("--max-rows", type=int, default=10_000)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summarize", type=Path, nargs="*", help="result files to summarise (no runs)")
    parser.add_argument("--report", type=Path, default=Path("docs/results/bench/score_variants.md"))
    parser.add_argument("--save-scores", type=Path, default=None,
                        help="folder for each (set, seed)'s test labels and per-row scores of every variant "
                             "(with --summarize: where to read them for the weight sweep)")
    parser.add_argument("--peers", type=Path, default=None,
                        help="a suite's results.jsonl: put its PyOD KNN beside the variants")
    args = parser.parse_args()
    if args.summarize:
        summarize(args.summarize, args.report, args.peers, scores_dir=args.save_scores)
        return
    if args.out is None:
        parser.error("--out is required unless --summarize is given")
    torch.set_num_threads(1)
    shard, n_shards = (int(v) for v in args.shard.split("/"))
    wanted = {d.lower() for d in args.datasets.split(",") if d}
    files = load_npz_folder(adbench_root("classical"))
    names = sorted(n for n in files if not wanted or n.lower() in wanted)[shard::n_shards]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(args.out, key=("dataset", "seed"))  # resume: finished (set, seed) pairs are skipped
    for name in names:
        X, y = None, None
        for seed in (int(s) for s in args.seeds.split(",")):
            if log.done((name, seed)):
                continue
            if X is None:
                with np.load(files[name]) as data:
                    X, y = subsample(data["X"].astype(np.float64), data["y"].astype(int), args.max_rows)
            X_train, X_test, y_test = split(args.protocol, X, y, random_state=seed)
            start = time.perf_counter()
            # the model a default fit ends with; its threshold is not needed for ROC-AUC, so the
            # cross-fitted calibration models (five more fits on small and mid-size tables) are skipped
            det = FlowDetector(random_state=seed)._fit_uncalibrated(X_train)
            fit_s = time.perf_counter() - start
            train = components(det, X_train)
            knn = NearestNeighbors(n_neighbors=min(5, len(X_train))).fit(train["z"])
            input_knn = NearestNeighbors(n_neighbors=min(5, len(X_train) - 1)).fit(train["inputs"])
            # leave-one-out distances of the training rows: ask for one more, drop the row itself
            train["r_k"] = input_knn.kneighbors(train["inputs"], n_neighbors=input_knn.n_neighbors + 1)[0][:, -1]
            rocs = {}
            per_row = scores(det, X_test, train, knn, input_knn)
            for variant, s in per_row.items():
                rocs[variant] = roc_auc(y_test, -np.where(np.isfinite(s), s, -1e300))
            if args.save_scores is not None:  # every variant's test scores, to study other combinations
                args.save_scores.mkdir(parents=True, exist_ok=True)
                np.savez_compressed(args.save_scores / f"{name}__{seed}.npz", y=y_test, **per_row)
            row = {"dataset": name, "seed": seed, "protocol": args.protocol, "fit_seconds": fit_s, **rocs}
            log.append({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})
            print(name, seed, {k: round(v, 3) for k, v in rocs.items()}, flush=True)


if __name__ == "__main__":
    main()
