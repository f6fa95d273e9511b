"""The large-table training schedule against the one before it: held-out log-likelihood, steps and
fit seconds of the default flow on tables of more than 65,536 rows.

Both schedules stop at a budget of 5 million rows seen. The one before (``previous``): batches that
doubled with each doubling of the rows from 256 (up to 2,048, reached at about 500k rows) and a
constant learning rate ``1e-3 * sqrt(batch / 256)``. Today's (``current``, the default): batches of
2,048 past 65,536 rows and a cosine decay from twice that rate to 1% of it over the budget.

Tables: 1M generated rows x 10 columns (the speed benchmark's generator; held-out rows are 100,000
new ones) and the ADBench classical sets with more than 65,536 normal rows (80% of the normal rows
fitted, the other 20% held out). Same process, one torch thread, both schedules one after the other
per table. Writes ``large_table_schedule.md`` and ``.jsonl`` under ``--out`` (a rerun skips done rows).

Usage: python benchmarks/large_table_schedule.py [--tables synthetic,cover] [--out docs/results/speed]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from flowad import FlowDetector
from flowad.core.threads import torch_threads
from flowad.datasets import load_adbench
from flowad.evaluation.bench import machine_info
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog
from flowad.models.tabular_flow import options
from flowad.models.tabular_flow.options import BASE_BATCH, LARGE_TABLE_ROWS, MAX_AUTO_BATCH, FlowOptions

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the speed benchmark's generator, beside this file
from speed import synthetic  # noqa: E402

TABLES = "synthetic,cover,donors,http,skin,celeba"
SCHEDULES = ("previous", "current")


def previous_batch(n_rows: int) -> int:
    """The automatic batch of the schedule before today's: doubling with the rows past 65,536."""
    if n_rows <= LARGE_TABLE_ROWS:
        return BASE_BATCH
    return int(min(MAX_AUTO_BATCH, BASE_BATCH * 2 ** round(math.log2(n_rows / LARGE_TABLE_ROWS))))


@contextlib.contextmanager
def schedule_of(name: str) -> Iterator[FlowDetector]:
    """The default flow trained with schedule ``name``: ``previous`` replaces the automatic batch rule
    by the one before today's for the duration of the block, with a constant learning rate."""
    if name == "current":
        yield FlowDetector(random_state=0)
        return
    current = options.auto_batch_size
    options.auto_batch_size = previous_batch
    try:
        yield FlowDetector(random_state=0, options=FlowOptions(lr_schedule="constant"))
    finally:
        options.auto_batch_size = current


def table(name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(fitted rows, held-out rows)`` of one table."""
    if name == "synthetic":
        return synthetic(1_000_000, seed=0), synthetic(100_000, seed=1)
    X, y = load_adbench(name)
    normal = X[y == 0].astype(np.float64)
    order = np.random.default_rng(0).permutation(len(normal))
    cut = int(0.8 * len(normal))
    return normal[order[:cut]], normal[order[cut:]]


def run_one(name: str, schedule: str) -> dict:
    fitted, held_out = table(name)
    with schedule_of(schedule) as model:
        start = time.perf_counter()
        model.fit(fitted)
        seconds = time.perf_counter() - start
    scores = model.score_samples(held_out)
    history = model.history_
    return {"table": name, "schedule": schedule, "rows": len(fitted), "columns": fitted.shape[1],
            "batch": history.batch_size, "steps": history.steps, "restarts": history.restarts,
            "fit_seconds": seconds, "heldout_log_likelihood": float(np.mean(scores)),
            "heldout_median": float(np.median(scores))}


def report(frame: pd.DataFrame, machine: dict) -> str:
    wide = frame.pivot(index="table", columns="schedule",
                       values=["heldout_log_likelihood", "fit_seconds", "steps", "batch"]).reset_index()
    wide.columns = ["table" if a == "table" else f"{a}_{b}" for a, b in wide.columns]
    for column in [c for c in wide.columns if c.startswith(("steps_", "batch_"))]:
        wide[column] = wide[column].astype(int)
    wide["gain_nats"] = wide.heldout_log_likelihood_current - wide.heldout_log_likelihood_previous
    wide["time_ratio"] = wide.fit_seconds_current / wide.fit_seconds_previous
    order = [t for t in TABLES.split(",") if t in set(wide.table)]
    wide = wide.set_index("table").loc[order].reset_index()
    columns = ["table", "heldout_log_likelihood_previous", "heldout_log_likelihood_current", "gain_nats",
               "steps_previous", "steps_current", "batch_previous", "batch_current", "fit_seconds_previous",
               "fit_seconds_current", "time_ratio"]
    return "\n".join([
        "# Training schedule on large tables: today's against the one before", "",
        f"Written by `benchmarks/large_table_schedule.py`; {machine['cpu_count']} cores, one torch thread, "
        f"{machine['platform']}. Both schedules stop at 5 million rows seen. `previous`: batches doubling "
        "with the rows from 256, constant learning rate; `current` (the default): batches of 2,048 and a "
        "cosine decay from twice the rate to 1% of it. Held-out log-likelihood: mean over rows the flow "
        "was not fitted to (nats per row, higher is better); fit seconds include the threshold.", "",
        markdown_table(wide[columns]), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=TABLES)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/results/speed"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(args.out / "large_table_schedule.jsonl", key=("table", "schedule"))
    with torch_threads(args.threads):
        for name in args.tables.split(","):
            for schedule in SCHEDULES:
                if not log.done((name, schedule)):
                    row = run_one(name, schedule)
                    print(row, flush=True)
                    log.append(row)
    frame = pd.DataFrame(log.rows())
    (args.out / "large_table_schedule.md").write_text(report(frame, machine_info(args.threads)))
    print(f"wrote {args.out / 'large_table_schedule.md'}")


if __name__ == "__main__":
    main()
