"""The time-series benchmark: five detectors on the same sliding windows, over the vehicle-sensor
generator's faults (one test series per fault kind) and the real labelled series.

Every method is a :class:`~flowad.timeseries.WindowDetector` with the same settings (window length,
stride, per-channel standardisation, point score, threshold from the held-out end of the training
series), wrapping a registry detector with its defaults: ``maf`` (normalizing flow), ``iforest``,
``ocsvm``, ``ae`` (autoencoder), ``elliptic`` (Elliptic Envelope). Per data set and seed it records
the metrics of :mod:`flowad.evaluation.ts_metrics`, fit and score seconds, and whether the single
most anomalous window overlaps a labelled anomaly (``top_window_hit``); the report has the tables
and, for the first seed, one figure per data set (series, detections of the flow, score tracks).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowad.datasets.series import REAL_SERIES, load_series
from flowad.datasets.vehicle import FAULT_KINDS, VEHICLE_CHANNELS, vehicle_sensors
from flowad.evaluation.bench import machine_info
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.ts_metrics import evaluate_series
from flowad.timeseries import WindowDetector
from flowad_studies.ts_report import bold_best, plot_series_detections, summary_table

__all__ = ["TS_DATASETS", "TS_METHODS", "TSBenchConfig", "run_ts_bench", "write_ts_report"]

logger = logging.getLogger(__name__)

TS_METHODS: tuple[str, ...] = ("maf", "iforest", "ocsvm", "ae", "elliptic")
TS_DATASETS: tuple[str, ...] = (*(f"vehicle_{kind}" for kind in FAULT_KINDS), *REAL_SERIES)
#: Data sets modelled as first differences (the same for every method): Yahoo's level trends upwards
#: out of its training range.
DIFFERENCED: frozenset[str] = frozenset({"yahoo"})
METHOD_NAMES = {"maf": "normalizing flow (MAF)", "iforest": "Isolation Forest", "ocsvm": "One-Class SVM",
                "ae": "autoencoder", "elliptic": "Elliptic Envelope"}


@dataclass
class TSBenchConfig:
    """Settings of a time-series benchmark run (the CLI maps its options onto these)."""

    methods: list[str] = field(default_factory=lambda: list(TS_METHODS))
    datasets: list[str] = field(default_factory=lambda: list(TS_DATASETS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    window: int = 16
    stride: int = 1
    point_score: str = "max"
    vehicle_train_points: int = 8000
    vehicle_test_points: int = 10_000
    faults_per_series: int = 5
    torch_threads: int | None = None

    def check(self) -> None:
        """Raise ``ValueError`` for unknown names or empty lists."""
        for name, values, known in (("datasets", self.datasets, TS_DATASETS), ("methods", self.methods, None)):
            if not values:
                raise ValueError(f"{name} must not be empty")
            unknown = [v for v in values if known is not None and v not in known]
            if unknown:
                raise ValueError(f"{name} must be among {list(known)}, got {unknown}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")


@dataclass
class _Task:
    name: str
    train: np.ndarray
    test: np.ndarray
    labels: np.ndarray
    channels: tuple[str, ...]


def _tasks(config: TSBenchConfig, seed: int) -> tuple[list[_Task], list[_Task]]:
    """(vehicle tasks sharing one training series, real-series tasks) for one seed."""
    vehicle, real = [], []
    train = None
    for i, kind in enumerate(FAULT_KINDS):
        if f"vehicle_{kind}" not in config.datasets:
            continue
        if train is None:
            train = vehicle_sensors(config.vehicle_train_points, faults=(), random_state=seed).values
        test = vehicle_sensors(config.vehicle_test_points, faults=(kind,), n_per_kind=config.faults_per_series,
                               random_state=10_000 + 100 * seed + i)
        vehicle.append(_Task(f"vehicle_{kind}", train, test.values, test.labels, VEHICLE_CHANNELS))
    for name in REAL_SERIES:
        if name in config.datasets:
            data = load_series(name)
            real.append(_Task(name, data.train, data.test, data.test_labels, data.channels))
    return vehicle, real


def _top_window_hit(detector: WindowDetector, series: np.ndarray, labels: np.ndarray) -> bool:
    """Does the most anomalous window overlap a labelled anomaly?"""
    k = int(np.argmin(detector.window_scores(series)))
    start = k * detector.stride
    return bool(labels[start : start + detector.window].any())


def run_ts_bench(config: TSBenchConfig, output: str | Path,
                 on_job: Callable[[int, int, str], None] | None = None) -> pd.DataFrame:
    """Run the benchmark, write ``results.csv``, ``results.json``, figures and ``report.md``.

    Args:
        config: What to run.
        output: Folder for the results and the report.
        on_job: Called as ``(done, total, what)`` before each fit (for progress bars).

    Returns:
        One row per (dataset, method, seed).
    """
    config.check()
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    if config.torch_threads:
        torch.set_num_threads(config.torch_threads)
    machine = machine_info(torch.get_num_threads())
    n_vehicle = any(d.startswith("vehicle_") for d in config.datasets)
    n_real = sum(d in REAL_SERIES for d in config.datasets)
    total = len(config.seeds) * len(config.methods) * (int(n_vehicle) + n_real)
    rows, done = [], 0
    for seed in config.seeds:
        vehicle, real = _tasks(config, seed)
        groups = ([vehicle] if vehicle else []) + [[task] for task in real]
        for group in groups:
            tracks: dict[str, dict] = {task.name: {} for task in group}
            for method in config.methods:
                if on_job is not None:
                    on_job(done, total, f"seed {seed}: {method} on {', '.join(t.name for t in group)}")
                detector = WindowDetector(method, window=config.window, stride=config.stride,
                                          difference=int(group[0].name in DIFFERENCED),
                                          point_score=config.point_score, random_state=seed)
                start = time.perf_counter()
                detector.fit(group[0].train)
                fit_s = time.perf_counter() - start
                for task in group:
                    start = time.perf_counter()
                    normality = detector.score_samples(task.test)
                    score_s = time.perf_counter() - start
                    metrics = evaluate_series(task.labels, -normality, normality < detector.offset_)
                    rows.append({"dataset": task.name, "method": method, "seed": seed, **metrics.as_dict(),
                                 "top_window_hit": _top_window_hit(detector, task.test, task.labels),
                                 "fit_s": fit_s, "score_s": score_s})
                    tracks[task.name][method] = (-normality, -detector.offset_)
                    logger.info("%s %s seed %d: event F1 %.3f, ROC-AUC %.3f", task.name, method, seed,
                                metrics.event_f1, metrics.roc_auc)
                done += 1
            if seed == config.seeds[0]:
                for task in group:
                    scores = {m: v[0] for m, v in tracks[task.name].items()}
                    thresholds = {m: v[1] for m, v in tracks[task.name].items()}
                    plot_series_detections(task.test, task.labels, scores, thresholds,
                                           output / f"series_{task.name}.png", channels=task.channels,
                                           title=f"{task.name} (test part, seed {seed}): labelled anomalies "
                                                 "shaded red, detections of the first method marked")
    frame = pd.DataFrame(rows)
    frame.to_csv(output / "results.csv", index=False)
    (output / "results.json").write_text(json.dumps({"config": asdict(config), "machine": machine,
                                                     "rows": rows}, indent=2))
    write_ts_report(output, frame, config, machine)
    return frame


def write_ts_report(output: Path, rows: pd.DataFrame, config: TSBenchConfig, machine: dict) -> Path:
    """``report.md``: the five-method table per data set, all metrics, top-window hits, timings."""
    order = {name: i for i, name in enumerate(TS_DATASETS)}
    rows = rows.assign(_d=rows["dataset"].map(order), _m=rows["method"].map(config.methods.index))
    rows = rows.sort_values(["_d", "_m", "seed"], kind="stable").drop(columns=["_d", "_m"])
    rows = rows.assign(method=rows["method"].map(lambda m: METHOD_NAMES.get(m, m)))
    table = summary_table(rows)
    study = bold_best(table[["dataset", "method", "precision", "recall", "f1", "roc_auc", "event_f1"]], "event_f1")
    events = bold_best(table[["dataset", "method", "event_precision", "event_recall", "event_f1",
                              "point_adjusted_f1_optimistic", "pr_auc", "flagged_share"]], "event_f1")
    hits = rows.pivot_table(index="dataset", columns="method", values="top_window_hit", aggfunc="mean", sort=False)
    hits = hits.map(lambda v: f"{v:.2f}").reset_index()
    times = rows.groupby("method", sort=False)[["fit_s", "score_s"]].mean().reset_index()
    seeds = ", ".join(str(s) for s in config.seeds)
    lines = [
        "# Time series: five detectors on sliding windows\n",
        f"Seeds {seeds}; {machine['cpu_count']} cores, {machine['torch_threads']} torch thread(s), "
        f"{machine['platform']}, flowad {machine['flowad']}.\n",
        f"Every method is `WindowDetector(method, window={config.window}, stride={config.stride}, "
        f"standardize=True, difference=0, point_score='{config.point_score}', contamination='auto', "
        "validation_fraction=0.2)` around the registry detector with its defaults: each window of all "
        "channels is one row; a point takes its most anomalous covering window; the threshold flags 1% of "
        "the points of the last 20% of the training series (held out in time).\n",
        f"Vehicle sensors: trained on a clean drive of {config.vehicle_train_points} points (seed), tested on "
        f"drives of {config.vehicle_test_points} points with {config.faults_per_series} faults of one kind each. "
        "UCR #135: trained on its 1,200 training points, tested on the other 6,301. Yahoo: first 400 points "
        "train, 600 test; its level trends upwards out of the training range, so every method models first "
        "differences there (`difference=1`). MIT-BIH: first 3,000 samples train, 4,500 test.\n",
        "Precision, recall and F1 are point-wise at each method's own threshold (from training data). "
        "Event F1: a labelled anomaly counts as found once if any point inside it is flagged; a predicted "
        "event (run of flagged points) counts as correct if it overlaps a labelled one. "
        "`point_adjusted_f1_optimistic` credits a whole labelled range for one hit and is optimistic by "
        "construction: shown only for comparison with papers that report it. Event precision counts alarms, "
        "not their length (a method that flags everything has event precision 1): read it beside the point "
        "precision and `flagged_share`, the share of test points flagged.\n",
        "## The study's table (mean ± std over seeds; best event F1 per data set in bold)\n",
        markdown_table(study),
        "## Event-wise metrics\n",
        markdown_table(events),
        "## Does the most anomalous window overlap a labelled anomaly? (share of seeds)\n",
        markdown_table(hits),
        "## Mean seconds per fit and per scored test series\n",
        markdown_table(times),
        "## Figures (first seed)\n",
        *(f"![{name}](series_{name}.png)\n" for name in rows["dataset"].unique()),
    ]
    path = output / "report.md"
    path.write_text("\n".join(lines))
    return path
