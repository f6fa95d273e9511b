"""The benchmark runner: detectors x data sets x protocols x seeds, one result row per job.

Rows go to ``results.jsonl`` as each job finishes (and to ``results.csv`` at the end), so an
interrupted run resumes where it stopped: jobs already in ``results.jsonl`` are skipped.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from flowad._version import __version__
from flowad.core.safe_files import atomic_path, atomic_write_text
from flowad.core.threads import torch_threads
from flowad.datasets import adbench_root, load_breast_cancer_anomaly, load_npz_folder, split, subsample
from flowad.datasets.splits import PROTOCOLS
from flowad.evaluation.results_log import ResultsLog
from flowad.evaluation.tabular_metrics import evaluate_scores
from flowad.models import available_detectors, make_detector

__all__ = ["BenchConfig", "DatasetSpec", "PeakMemory", "resolve_datasets", "run_bench"]

logger = logging.getLogger(__name__)

#: Data sets built into flowad, by name.
BUILTIN_SETS: dict[str, Callable[[], tuple[np.ndarray, np.ndarray]]] = {
    "breast_cancer": lambda: load_breast_cancer_anomaly()[:2],
}
KEY = ("dataset", "protocol", "detector", "seed")


@dataclass
class BenchConfig:
    """What to run.

    Attributes:
        suites: Folders of ADBench-format ``.npz`` files, ADBench suite names found offline
            (``"classical"``, ``"mvtec_resnet18"``), or ``"builtin"`` for flowad's own sets.
        datasets: Names to keep (case-insensitive; ``None`` keeps all).
        detectors: Registry names (flowad's and PyOD peers').
        protocols: ``"oneclass"`` and/or ``"unsupervised"`` (see :mod:`flowad.datasets.splits`).
        seeds: One job per seed: the split and the detector's ``random_state``.
        max_rows: Larger sets are subsampled (stratified, fixed seed) to this many rows; ``None``
            keeps all. Recorded in every row.
        params: Hyper-parameter overrides per detector name.
        roc_datasets: Sets whose test scores (first seed) are kept for ROC plots.
        torch_threads: ``torch.set_num_threads`` for the run (recorded with the machine).
    """

    suites: list[str] = field(default_factory=lambda: ["classical"])
    datasets: list[str] | None = None
    detectors: list[str] = field(default_factory=available_detectors)
    protocols: list[str] = field(default_factory=lambda: ["oneclass"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    max_rows: int | None = 20_000
    params: dict[str, dict] = field(default_factory=dict)
    roc_datasets: list[str] = field(default_factory=list)
    torch_threads: int | None = None


@dataclass
class DatasetSpec:
    """A named data set and how to load it."""

    name: str
    suite: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]


def _npz_loader(path: Path) -> Callable[[], tuple[np.ndarray, np.ndarray]]:
    def load() -> tuple[np.ndarray, np.ndarray]:
        with np.load(path, allow_pickle=False) as data:
            return data["X"].astype(np.float64), data["y"].astype(np.int64)

    return load


def resolve_datasets(suites: list[str], names: list[str] | None = None) -> list[DatasetSpec]:
    """The data sets of the given suites, filtered by name.

    Raises:
        ValueError: If a suite is unknown, or a requested name matches nothing.
    """
    specs: list[DatasetSpec] = []
    for suite in suites:
        if suite == "builtin":
            specs += [DatasetSpec(name, "builtin", loader) for name, loader in BUILTIN_SETS.items()]
            continue
        folder = Path(suite)
        if not folder.is_dir():
            try:
                folder = adbench_root(suite)
            except FileNotFoundError:
                raise ValueError(f"suite must be a folder of .npz files, an ADBench suite name or 'builtin', "
                                 f"got {suite!r}") from None
        specs += [DatasetSpec(name, folder.name, _npz_loader(path)) for name, path in load_npz_folder(folder).items()]
    if names:
        wanted = {n.lower() for n in names}
        found = {s.name.lower() for s in specs}
        missing = sorted(wanted - found)
        if missing:
            raise ValueError(f"datasets not found in the suites: {missing}")
        specs = [s for s in specs if s.name.lower() in wanted]
    return specs


class PeakMemory:
    """Peak resident memory above the starting level while a block runs, in MB (Linux ``/proc``)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.peak_mb = float("nan")

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        self._stop = threading.Event()
        try:
            self._start = self._peak = self._rss()
        except OSError:
            self._thread = None
            return self
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, self._rss())

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, self._rss())
            self.peak_mb = (self._peak - self._start) / 2**20


def machine_info(torch_threads: int) -> dict:
    """Where the run happened (recorded next to the results)."""
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch_threads,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "flowad": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def run_bench(
    config: BenchConfig,
    out_dir: str | Path,
    on_job: Callable[[int, int, str], None] | None = None,
) -> pd.DataFrame:
    """Run every job of ``config`` not yet in ``out_dir/results.jsonl``.

    Args:
        config: What to run.
        out_dir: Folder for ``results.jsonl``, ``results.csv``, ``config.json``, ``machine.json``
            and ``scores/`` (test scores for ROC plots).
        on_job: Progress callback ``(jobs_done, jobs_total, description)``.

    Returns:
        All rows in ``out_dir`` (earlier runs included).
    """
    for protocol in config.protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    for name in config.detectors:
        detector = make_detector(name, **config.params.get(name, {}))  # fail early on a bad name
        if hasattr(detector, "_make"):
            detector._make(2)  # import PyOD before anything is timed or measured
    specs = resolve_datasets(config.suites, config.datasets)
    out = Path(out_dir)
    (out / "scores").mkdir(parents=True, exist_ok=True)
    threads = config.torch_threads or torch.get_num_threads()
    atomic_write_text(out / "config.json", json.dumps(asdict(config), indent=2))
    atomic_write_text(out / "machine.json", json.dumps(machine_info(threads), indent=2))
    log = ResultsLog(out / "results.jsonl", key=KEY)
    with torch_threads(threads):
        _run_jobs(config, specs, log, out, on_job)
    frame = pd.DataFrame(log.rows())
    with atomic_path(out / "results.csv") as tmp:
        frame.to_csv(tmp, index=False)
    return frame


def _run_jobs(config: BenchConfig, specs: list[DatasetSpec], log: ResultsLog, out: Path, on_job) -> None:
    total = len(specs) * len(config.protocols) * len(config.seeds) * len(config.detectors)
    count = 0
    roc_sets = {n.lower() for n in config.roc_datasets}
    for spec in specs:
        todo = [(p, s, d) for p in config.protocols for s in config.seeds for d in config.detectors
                if not log.done((spec.name, p, d, s))]
        if not todo:
            count += len(config.protocols) * len(config.seeds) * len(config.detectors)
            continue
        X_full, y_full = spec.load()
        X, y = (X_full, y_full) if config.max_rows is None else subsample(X_full, y_full, config.max_rows)
        info = {"dataset": spec.name, "suite": spec.suite, "n": len(y_full), "n_used": len(y),
                "d": X.shape[1], "anomaly_share": float(y_full.mean())}
        for protocol in config.protocols:
            for seed in config.seeds:
                X_train, X_test, y_test = split(protocol, X, y, random_state=seed)
                for detector_name in config.detectors:
                    count += 1
                    if log.done((spec.name, protocol, detector_name, seed)):
                        continue
                    if on_job is not None:
                        on_job(count - 1, total, f"{spec.name} {protocol} {detector_name} seed {seed}")
                    row, scores = _run_job(detector_name, config.params.get(detector_name, {}), seed,
                                           X_train, X_test, y_test)
                    log.append({**info, "protocol": protocol, "detector": detector_name, "seed": seed, **row,
                                "flowad_version": __version__})
                    if scores is not None and spec.name.lower() in roc_sets and seed == config.seeds[0]:
                        np.savez(out / "scores" / f"{spec.name}__{protocol}__{detector_name}.npz",
                                 y=y_test, anomaly_score=scores)
    if on_job is not None:
        on_job(total, total, "done")


def _run_job(name: str, params: dict, seed: int, X_train, X_test, y_test) -> tuple[dict, np.ndarray | None]:
    """Fit, score and evaluate one detector; failures become rows with ``status="error"``."""
    detector = make_detector(name, **params)
    if "random_state" in detector.get_params():
        detector.set_params(random_state=seed)
    row: dict = {"params": json.dumps(params, sort_keys=True)}
    try:
        with PeakMemory() as memory:
            start = time.perf_counter()
            detector.fit(X_train)
            fit_seconds = time.perf_counter() - start
            start = time.perf_counter()
            normality = detector.score_samples(X_test)
            score_seconds = time.perf_counter() - start
        metrics = evaluate_scores(y_test, -normality, normality < detector.offset_)
    except Exception as error:  # noqa: BLE001 - a failing detector is a result, not a crash
        logger.warning("%s failed: %s", name, error)
        return {**row, "status": "error", "error": f"{type(error).__name__}: {error}"[:500]}, None
    values = metrics.as_dict()
    values["n_test"], values["n_test_anomalies"] = values.pop("n"), values.pop("n_anomalies")
    return {**row, "status": "ok", **values, "fit_seconds": fit_seconds,
            "score_seconds": score_seconds, "peak_memory_mb": memory.peak_mb}, -normality
