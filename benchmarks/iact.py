"""IACT benchmark: Hillas parameters against ctapipe, and flow-based gamma/hadron separation.

Writes into ``docs/results/iact/``:

- ``hillas.md`` / ``hillas.json``: (a) equality of :func:`flowad.iact.hillas_parameters` with
  ctapipe 0.28's ``hillas_parameters`` on simulated, tail-cuts cleaned images (6/3 p.e.) of both real
  cameras (MAGIC, LST): largest relative and absolute difference per parameter (psi modulo pi);
  (b) speed: flowad's batch call on every image against ctapipe's per-image call
  (``hillas_parameters(geom[mask], image[mask])``, the usual way), in the same process; ctapipe is
  timed on every image (the equality check calls it on all anyway) or, with ``--ctapipe-timed N``,
  on the first N and extrapolated linearly.
- ``separation.md`` / ``separation.json`` / ``roc_magic.png``: (c) the UCI MAGIC gamma telescope
  events (gammas = normal): the flow (``FlowDetector()`` defaults, through
  :class:`~flowad.iact.pipeline.GammaHadronSeparator`, i.e. with its feature transforms) beside
  IForest, a GMM (``n_components`` by BIC in 1..8 on the training rows) and LOF (novelty) on the same
  inputs, under ADBench's *unsupervised* protocol (stratified 70/30 split, fitted on the unlabelled
  training part) and the *one-class* protocol (fitted on 60% of the gammas); the flow without the
  feature transforms (one-class); the two-class flow (hadrons as known negatives) and the density
  ratio of a gamma flow and a hadron flow (``FlowRatioClassifier``, ``mode="ratio"``) beside
  supervised gradient boosting and a random forest (same 70/30 split, labelled). (d) the same pipeline on the
  toy simulator's MAGIC images: images -> cleaning -> Hillas -> flow. Seeds vary split, simulation
  and model; tables give mean and standard deviation.

Usage::

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/iact.py
    python benchmarks/iact.py --parts hillas          # (a) + (b) only
    python benchmarks/iact.py --quick --out /tmp/iact  # smoke run, small sizes

The full run takes about 15-20 minutes on one thread of this 2-core machine (most of it the
default flows on MAGIC: 20 - 45 s per fit).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler

from flowad.core.estimator import contamination_value
from flowad.datasets import load_magic_gamma, oneclass_split, unsupervised_split
from flowad.evaluation.bench import machine_info
from flowad.evaluation.iact_metrics import evaluate_separation
from flowad.evaluation.iact_report import plot_gamma_roc
from flowad.evaluation.markdown import markdown_table
from flowad.iact import (
    HILLAS_KEYS,
    MIN_WIDTH_RATIO,
    camera_file,
    hillas_parameters,
    load_camera,
    simulate_events,
    tailcuts_clean,
)
from flowad.iact.pipeline import GammaHadronSeparator, HillasFeatures
from flowad.models import FlowDetector, FlowRatioClassifier, IsolationForestDetector, LOFDetector

logger = logging.getLogger("benchmarks.iact")
COMPARED = (*HILLAS_KEYS, "psi_uncertainty", "transverse_cog_uncertainty")


# ------------------------------------------------------------------------------ (a) + (b) Hillas
def _ctapipe_values(result, u) -> dict[str, float]:
    values = {"intensity": result.intensity, "skewness": result.skewness, "kurtosis": result.kurtosis}
    for key in ("x", "y", "r", "length", "width", "length_uncertainty", "width_uncertainty",
                "transverse_cog_uncertainty"):
        values[key] = getattr(result, key).to_value(u.m)
    for key in ("phi", "psi", "psi_uncertainty"):
        values[key] = getattr(result, key).to_value(u.rad)
    return values


def hillas_part(n_images: int, n_timed: int, seed: int) -> list[dict]:
    """Equality and speed against ctapipe on both cameras; one summary row per camera."""
    import astropy.units as u
    from ctapipe.image import hillas_parameters as ctapipe_hillas
    from ctapipe.instrument import CameraGeometry as CtapipeGeometry

    rows = []
    for name in ("magic", "lst"):
        cam = load_camera(name)
        geom = CtapipeGeometry.from_table(camera_file(name))
        images, _, _ = simulate_events(cam, n_images, gamma_fraction=0.45, muon_fraction=0.1, random_state=seed)
        masks = tailcuts_clean(cam, images, 6.0, 3.0)
        clean = np.where(masks, images, 0.0)
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            ours = hillas_parameters(cam.pix_x, cam.pix_y, clean, pix_area=cam.pix_area)
            best = min(best, time.perf_counter() - start)
        rel = dict.fromkeys(COMPARED, 0.0)
        absolute = dict.fromkeys(COMPARED, 0.0)
        counts = {"compared": 0, "invalid_both": 0, "validity_mismatch": 0, "empty": 0}
        candidates = np.flatnonzero(masks.any(axis=1))
        counts["empty"] = n_images - len(candidates)
        timed, t_ctapipe = 0, 0.0
        for i in candidates:
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ref = _ctapipe_values(ctapipe_hillas(geom[masks[i]], clean[i, masks[i]]), u)
                except Exception:  # ctapipe raises for zero or negative intensity
                    ref = None
            if n_timed <= 0 or timed < n_timed:
                t_ctapipe += time.perf_counter() - start
                timed += 1
            ok_ref = (ref is not None and all(np.isfinite(v) for v in ref.values())
                      and ref["width"] > MIN_WIDTH_RATIO * ref["length"])
            if not ok_ref or not ours["valid"][i]:
                counts["invalid_both" if ok_ref == bool(ours["valid"][i]) else "validity_mismatch"] += 1
                continue
            counts["compared"] += 1
            for key, expected in ref.items():
                got = ours[key][i]
                diff = abs((got - expected + np.pi / 2) % np.pi - np.pi / 2) if key == "psi" else abs(got - expected)
                absolute[key] = max(absolute[key], float(diff))
                rel[key] = max(rel[key], float(diff / max(abs(expected), 1e-12)))
        per_image = t_ctapipe / max(timed, 1)
        extrapolated = per_image * len(candidates)
        rows.append({"camera": cam.name, "n_pixels": cam.n_pixels, "n_images": n_images, **counts,
                     "max_rel_diff": rel, "max_abs_diff": absolute, "flowad_batch_seconds": best,
                     "ctapipe_timed_images": timed, "ctapipe_seconds_per_image": per_image,
                     "ctapipe_seconds_extrapolated": extrapolated, "speedup": extrapolated / best})
        logger.info("%s: %d compared, max rel diff %.2e, speed-up %.0fx", cam.name, counts["compared"],
                    max(rel.values()), extrapolated / best)
    return rows


def write_hillas(out: Path, rows: list[dict], machine: dict) -> None:
    (out / "hillas.json").write_text(json.dumps({"machine": machine, "cameras": rows}, indent=2))
    diffs = pd.DataFrame({f"{r['camera']} max rel": r["max_rel_diff"] for r in rows}
                         | {f"{r['camera']} max abs": r["max_abs_diff"] for r in rows})
    diffs = diffs.map(lambda v: f"{v:.1e}").reset_index(names="parameter")
    counts = pd.DataFrame([{k: r[k] for k in ("camera", "n_pixels", "n_images", "compared", "invalid_both",
                                               "validity_mismatch", "empty")} for r in rows])
    speed = pd.DataFrame([{"camera": r["camera"], "images": r["n_images"] - r["empty"],
                           "flowad batch (s)": r["flowad_batch_seconds"],
                           "ctapipe per image (ms)": 1e3 * r["ctapipe_seconds_per_image"],
                           "ctapipe timed on": r["ctapipe_timed_images"],
                           "ctapipe, extrapolated (s)": r["ctapipe_seconds_extrapolated"],
                           "speed-up": r["speedup"]} for r in rows])
    lines = ["# Hillas parameters: flowad against ctapipe 0.28\n",
             f"Toy-simulated images (45% gamma, 45% hadron, 10% muon), tail-cuts cleaned at 6/3 p.e.; "
             f"{machine['cpu_count']} cores, {machine['torch_threads']} thread(s), {machine['platform']}.\n",
             "## Equality\n",
             "Largest difference per parameter over all images where both give valid parameters (lengths in m, "
             "angles in rad; psi modulo pi; relative: |flowad - ctapipe| / max(|ctapipe|, 1e-12)). "
             "`invalid_both`: ctapipe raises or gives NaN / width <= 1e-4 length, and flowad flags the image "
             "invalid; `validity_mismatch` must be 0.\n",
             markdown_table(counts), markdown_table(diffs),
             "## Speed\n",
             "Same process, same cleaned images (cleaning not timed). flowad: one batched call on every image with "
             "at least one pixel (best of 3). ctapipe: `hillas_parameters(geom[mask], image[mask])` per image, "
             "timed on the number of images given (extrapolated linearly to all where that is fewer).\n",
             markdown_table(speed)]
    (out / "hillas.md").write_text("\n".join(lines))


# ------------------------------------------------------------------------ (c) + (d) separation
def quantile_offset(train_scores: np.ndarray, contamination) -> float:
    """The peers' own cut: the ``contamination`` quantile of their training scores (no calibration)."""
    return float(np.quantile(np.asarray(train_scores, dtype=np.float64), contamination_value(contamination)))


class GMMBIC(BaseEstimator):
    """Gaussian mixture on standardised rows, ``n_components`` by BIC in ``1..max_components``."""

    def __init__(self, max_components: int = 8, contamination="auto", random_state=None):
        self.max_components = max_components
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, X, y=None):
        self.scaler_ = StandardScaler().fit(X)
        Xs = self.scaler_.transform(X)
        fits = [GaussianMixture(k, covariance_type="full", random_state=self.random_state).fit(Xs)
                for k in range(1, self.max_components + 1)]
        self.gmm_ = min(fits, key=lambda g: g.bic(Xs))
        self.offset_ = quantile_offset(self.score_samples(X), self.contamination)
        return self

    def score_samples(self, X):
        return self.gmm_.score_samples(self.scaler_.transform(X))


class Classifier(BaseEstimator):
    """Supervised peer: ``score_samples`` is the log-odds of the training class (``y == 0``)."""

    def __init__(self, kind: str = "hgb", contamination="auto", random_state=None):
        self.kind = kind
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, X, y):
        model = (HistGradientBoostingClassifier(random_state=self.random_state) if self.kind == "hgb" else
                 RandomForestClassifier(n_estimators=300, n_jobs=1, random_state=self.random_state))
        self.model_ = model.fit(X, y)
        self.offset_ = quantile_offset(self.score_samples(X[np.asarray(y) == 0]), self.contamination)
        return self

    def score_samples(self, X):
        p = np.clip(self.model_.predict_proba(X)[:, 0], 1e-12, 1 - 1e-12)
        return np.log(p) - np.log1p(-p)


def _flow(seed: int, epochs: int | None) -> FlowDetector:
    return FlowDetector(random_state=seed) if epochs is None else FlowDetector(random_state=seed, max_epochs=epochs)


def _ratio(seed: int, epochs: int | None) -> FlowRatioClassifier:
    return FlowRatioClassifier(random_state=seed, **({} if epochs is None else {"max_epochs": epochs}))


#: Protocols this run measures (``--protocols``); the rows of the others are kept from the last run.
PROTOCOLS = {"unsupervised", "supervised", "oneclass"}


def _run(name, protocol, detector, mode, X_train, y_train, X_test, y_test, seed, curves, tag,
         compress: bool = True) -> dict | None:
    if protocol not in PROTOCOLS:
        return None
    separator = GammaHadronSeparator(detector=detector, mode=mode, compress=compress)
    start = time.perf_counter()
    separator.fit(X_train, y_train)
    fit_s = time.perf_counter() - start
    gammaness, valid = separator.gammaness(X_test, return_valid=True)
    metrics = evaluate_separation(y_test, gammaness, cut=separator.cut_, valid=valid)
    if seed == curves.get("seed"):
        curves.setdefault((tag, protocol), {})[name] = (y_test[valid], gammaness[valid])
    logger.info("%s %s %s seed %d: ROC-AUC %.3f (%.1f s)", tag, protocol, name, seed, metrics.roc_auc, fit_s)
    return {"data": tag, "protocol": protocol, "model": name, "seed": seed, "fit_seconds": fit_s,
            **metrics.as_dict()}


def magic_part(seeds: list[int], epochs: int | None, max_rows: int | None, curves: dict) -> list[dict]:
    X, y, names = load_magic_gamma()
    frame = pd.DataFrame(X, columns=names)
    rows = []
    for seed in seeds:
        index = np.arange(len(y))[:, None]
        if max_rows:
            index = index[np.sort(np.random.default_rng(seed).permutation(len(y))[:max_rows])]
        yy = y[index[:, 0]]
        tr, te, _ = unsupervised_split(index, yy, 0.7, random_state=seed)
        tr, te = tr[:, 0], te[:, 0]
        args = (frame.iloc[tr], None, frame.iloc[te], y[te], seed, curves, "magic")
        for name, det in (("flow", _flow(seed, epochs)), ("iforest", IsolationForestDetector(random_state=seed)),
                          ("gmm_bic", GMMBIC(random_state=seed)), ("lof", LOFDetector())):
            rows.append(_run(name, "unsupervised", det, "oneclass", *args))
        labelled = (frame.iloc[tr], y[tr], frame.iloc[te], y[te], seed, curves, "magic")
        for name, det, mode in (("flow_twoclass", _flow(seed, epochs), "twoclass"),
                                ("flow_ratio", _ratio(seed, epochs), "ratio"),
                                ("hist_gb", Classifier("hgb", random_state=seed), "twoclass"),
                                ("random_forest", Classifier("rf", random_state=seed), "twoclass")):
            rows.append(_run(name, "supervised", det, mode, *labelled))
        otr, ote, _ = oneclass_split(index, yy, 0.6, random_state=seed)
        otr, ote = otr[:, 0], ote[:, 0]
        oargs = (frame.iloc[otr], y[otr], frame.iloc[ote], y[ote], seed, curves, "magic")
        for name, det in (("flow", _flow(seed, epochs)), ("iforest", IsolationForestDetector(random_state=seed)),
                          ("gmm_bic", GMMBIC(random_state=seed)), ("lof", LOFDetector())):
            rows.append(_run(name, "oneclass", det, "oneclass", *oargs))
        # the same flow on the raw UCI columns (no log1p / asinh compression), for the transforms' effect
        rows.append(_run("flow_raw_features", "oneclass", _flow(seed, epochs), "oneclass", *oargs, compress=False))
    return rows


def sim_part(seeds: list[int], n_train: int, n_test: int, epochs: int | None, curves: dict) -> list[dict]:
    cam = load_camera("magic")
    step = HillasFeatures(cam)
    rows = []
    for seed in seeds:
        images, labels, _ = simulate_events(cam, n_train + n_test, random_state=1000 + seed)
        table = step.transform(images)
        tr, te = np.arange(n_train), np.arange(n_train, n_train + n_test)
        base = (table.iloc[tr], labels[tr], table.iloc[te].reset_index(drop=True), labels[te], seed, curves, "sim")
        for name, det, mode in (("flow", _flow(seed, epochs), "oneclass"),
                                ("iforest", IsolationForestDetector(random_state=seed), "oneclass"),
                                ("flow_twoclass", _flow(seed, epochs), "twoclass"),
                                ("flow_ratio", _ratio(seed, epochs), "ratio"),
                                ("hist_gb", Classifier("hgb", random_state=seed), "twoclass"),
                                ("random_forest", Classifier("rf", random_state=seed), "twoclass")):
            rows.append(_run(name, "oneclass" if mode == "oneclass" else "supervised", det, mode, *base))
    return rows


def _with_earlier_rows(out: Path, rows: list[dict]) -> list[dict]:
    """``rows`` (this run's) after the rows of the last run's ``separation.json`` for the protocols this
    run skipped (marked ``"earlier_run": true``)."""
    rows = [r for r in rows if r is not None]
    previous = out / "separation.json"
    if PROTOCOLS == {"unsupervised", "supervised", "oneclass"} or not previous.exists():
        return rows
    measured = {(r["data"], r["protocol"]) for r in rows}
    kept = [{**r, "earlier_run": True} for r in json.loads(previous.read_text())["rows"]
            if r["protocol"] not in PROTOCOLS and (r["data"], r["protocol"]) not in measured]
    order = {"unsupervised": 0, "supervised": 1, "oneclass": 2}
    return sorted(kept + rows, key=lambda r: (r["data"] != "magic", order[r["protocol"]]))


def write_separation(out: Path, rows: list[dict], machine: dict, curves: dict, settings: dict) -> None:
    rows = _with_earlier_rows(out, rows)
    (out / "separation.json").write_text(json.dumps(
        {"machine": machine, "settings": settings,
         "rows": [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                  for r in rows]}, indent=2))
    frame = pd.DataFrame(rows)
    cols = ["roc_auc", "gamma_eff_at_1pct", "gamma_eff_at_2pct", "gamma_eff_at_5pct", "gamma_eff_at_10pct",
            "gamma_eff_at_20pct", "q_max", "cut_gamma_efficiency", "cut_hadron_acceptance", "fit_seconds"]
    lines = ["# Gamma/hadron separation with normalizing flows\n",
             f"Seeds {settings['seeds']}; mean (std) over seeds. {machine['cpu_count']} cores, "
             f"{machine['torch_threads']} torch thread(s), {machine['platform']}. Gammas are the normal class; "
             "gamma efficiency at 1/2/5/10/20% hadron acceptance; Q_max = max eps_g / sqrt(eps_h) over cuts keeping "
             ">= 10 hadrons; `cut_*`: efficiencies of each model's own cut, learned on training data to keep 90% of "
             "the training class (`flow_ratio`: to accept 10% of held-out training hadrons). Every model sees the "
             "same inputs (the separator's features: log1p / asinh of "
             "the heavy-tailed ones), except `flow_raw_features`.\n"]
    earlier = sorted({r["protocol"] for r in rows if r.get("earlier_run")})
    if earlier:
        lines.append(f"Protocols {', '.join(f'`{p}`' for p in earlier)}: rows of the previous run of this script "
                     f"(same seeds and splits); this run measured the others.\n")
    titles = {"magic": "UCI MAGIC gamma telescope (19,020 events, 10 features)",
              "sim": "Toy-simulated MAGIC images: cleaning -> Hillas -> flow"}
    for tag in frame["data"].unique():
        lines.append(f"## {titles.get(tag, tag)}\n")
        for protocol in frame.loc[frame["data"] == tag, "protocol"].unique():
            part = frame[(frame["data"] == tag) & (frame["protocol"] == protocol)]
            mean, std = part.groupby("model", sort=False)[cols].mean(), part.groupby("model", sort=False)[cols].std()
            table = mean.copy().astype(object)
            for c in cols:
                table[c] = [f"{m:.3f}" + ("" if not np.isfinite(s) else f" ({s:.3f})") for m, s in
                            zip(mean[c], std[c], strict=True)]
            lines += [f"### Protocol `{protocol}`\n", markdown_table(table.reset_index())]
            png = out / f"roc_{tag}_{protocol}.png"
            if (tag, protocol) in curves:
                plot_gamma_roc(*_stack(curves[(tag, protocol)]), png,
                               title=f"{tag}, {protocol} (seed {settings['seeds'][0]})")
            if png.exists():  # a protocol kept from the last run keeps its figure
                lines.append(f"![ROC {tag} {protocol}]({png.name})\n")
    (out / "separation.md").write_text("\n".join(lines))


def _stack(curves: dict) -> tuple[np.ndarray, dict]:
    y = next(iter(curves.values()))[0]
    return y, {name: g for name, (_, g) in curves.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="hillas,magic,sim", help="comma-separated: hillas, magic, sim")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--n-images", type=int, default=10_000, help="(a)/(b): images per camera")
    parser.add_argument("--ctapipe-timed", type=int, default=0,
                        help="(b): images timed with ctapipe, then extrapolated (0: all of them, no extrapolation)")
    parser.add_argument("--sim-train", type=int, default=20_000)
    parser.add_argument("--sim-test", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=None, help="cap the flows' epochs (default: FlowDetector's)")
    parser.add_argument("--max-rows", type=int, default=None, help="subsample MAGIC (smoke runs)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 5 epochs, seed 0")
    parser.add_argument("--protocols", default="unsupervised,supervised,oneclass",
                        help="separation protocols to measure; the others keep the rows of the last run")
    parser.add_argument("--out", default="docs/results/iact")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.quick:
        args.seeds, args.n_images, args.ctapipe_timed, args.epochs = "0", 300, 100, 5
        args.sim_train, args.sim_test, args.max_rows = 1000, 500, 3000
    torch.set_num_threads(args.threads)
    PROTOCOLS.intersection_update(args.protocols.split(","))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    machine = machine_info(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = set(args.parts.split(","))
    if "hillas" in parts:
        write_hillas(out, hillas_part(args.n_images, args.ctapipe_timed, seed=0), machine)
    rows, curves = [], {"seed": seeds[0]}
    settings = {"seeds": seeds, "epochs": args.epochs, "max_rows": args.max_rows, "sim_train": args.sim_train,
                "sim_test": args.sim_test}
    if "magic" in parts:
        rows += magic_part(seeds, args.epochs, args.max_rows, curves)
        write_separation(out, rows, machine, curves, settings)
    if "sim" in parts:
        rows += sim_part(seeds, args.sim_train, args.sim_test, args.epochs, curves)
        write_separation(out, rows, machine, curves, settings)
    logger.info("results in %s", out)


if __name__ == "__main__":
    main()
