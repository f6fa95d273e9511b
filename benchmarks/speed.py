"""Speed and memory of the default flow detector against IForest and PyOD's ECOD, same run.

Writes ``docs/results/speed/speed.md`` and ``speed.json``: fit and score seconds on ADBench shuttle
(49k rows) and on a generated 1M-row table (10 correlated columns), each as a ratio to the peers
measured in the same process, and the peak memory added while scoring 100k and 1M rows (scoring
runs in chunks, so it should not grow with the number of rows).

Usage: python benchmarks/speed.py [--threads 2] [--out docs/results/speed]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from flowad import make_detector
from flowad.datasets import load_adbench, oneclass_split
from flowad.evaluation.bench import PeakMemory, machine_info
from flowad.evaluation.markdown import markdown_table

DETECTORS = ["maf", "iforest", "pyod_ecod"]


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows of 10 correlated, partly non-linear columns."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 5))
    return np.column_stack([base, np.sin(base[:, :3]) + 0.1 * rng.normal(size=(n, 3)), base[:, 3:] ** 2])


def time_detector(name: str, X_train: np.ndarray, X_score: np.ndarray, flow_epochs: int | None = None) -> dict:
    detector = make_detector(name)
    if flow_epochs is not None and "max_epochs" in detector.get_params():
        detector.set_params(max_epochs=flow_epochs)
    if "random_state" in detector.get_params():
        detector.set_params(random_state=0)
    start = time.perf_counter()
    detector.fit(X_train)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    detector.score_samples(X_score)
    score = time.perf_counter() - start
    row = {"detector": name, "fit_seconds": fit, "score_seconds": score, "detector_object": detector}
    if hasattr(detector, "n_epochs_"):
        row["epochs"] = detector.n_epochs_
        row["fit_seconds_per_epoch"] = fit / detector.n_epochs_
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default="docs/results/speed")
    parser.add_argument("--flow-epochs-1m", type=int, default=20,
                        help="epoch cap for the flow on the 1M-row table (epoch-based early stopping "
                             "with patience 20 on 1M rows runs for about an hour on 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X, y = load_adbench("shuttle")
    shuttle_train, shuttle_test, _ = oneclass_split(X, y, random_state=0)
    big = synthetic(1_000_000)
    machine = machine_info(args.threads)
    tables, memory = {}, []
    for label, (train, test) in {"shuttle": (shuttle_train, shuttle_test), "synthetic_1M": (big, big)}.items():
        epochs = args.flow_epochs_1m if label == "synthetic_1M" else None
        rows = [time_detector(name, train, test, epochs) for name in DETECTORS]
        for row in rows:
            if row["detector"] == "maf" and label == "synthetic_1M":
                flow = row["detector_object"]
                for n in (100_000, 1_000_000):
                    with PeakMemory() as peak:
                        flow.score_samples(big[:n])
                    memory.append({"rows_scored": n, "peak_memory_added_mb": peak.peak_mb})
            del row["detector_object"]
        flow = rows[0]
        for row in rows:
            row["flow_fit_ratio"] = flow["fit_seconds"] / row["fit_seconds"]
            row["flow_score_ratio"] = flow["score_seconds"] / row["score_seconds"]
        tables[label] = rows
        write(out, args.threads, machine, tables, memory, {"shuttle": len(shuttle_train), "synthetic_1M": len(big)})


def write(out: Path, threads: int, machine: dict, tables: dict, memory: list, sizes: dict) -> None:
    """Write what has been measured so far (a long run keeps its finished tables)."""
    import pandas as pd

    (out / "speed.json").write_text(json.dumps({"machine": machine, "tables": tables, "memory": memory}, indent=2))
    lines = ["# Speed and memory: default FlowDetector vs IForest and PyOD ECOD\n",
             f"Same process, {threads} torch thread(s), {machine['cpu_count']} cores, {machine['platform']}. "
             "Ratios are flow time / peer time (above 1: the flow is slower). Shuttle: default configuration; "
             "1M-row table: default configuration with the flow's epochs capped (see the epochs column).\n"]
    for label, rows in tables.items():
        lines += [f"## {label} (fit on {sizes[label]} rows)\n", markdown_table(pd.DataFrame(rows)), ""]
    if memory:
        lines += ["## Peak memory added while scoring with the flow (chunks of 65,536 rows)\n",
                  markdown_table(pd.DataFrame(memory)), ""]
    (out / "speed.md").write_text("\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
