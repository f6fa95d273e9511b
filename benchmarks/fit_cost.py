"""What a large-table fit's time is made of, and what shorter fits would cost: the step budget, the
batch size and the optimizer implementation of the default flow, beside Isolation Forest.

Part ``budget``: the default ``FlowDetector`` on 1M generated rows x 10 columns (the speed
benchmark's generator; 100,000 new rows held out) with the automatic step budget set to 1.25M,
2.5M and 5M rows seen (5M is the default), and flowad's Isolation Forest in the same process: fit
seconds (each with its threshold), held-out log-likelihood, and the flow's time over the forest's.

Part ``step``: milliseconds per optimizer step of the default flow's network (MAF, 5 transforms,
hidden 64 x 64, 10 columns) at batches of 256 to 16,384 rows, with PyTorch's default Adam and with
its fused one; the per-row cost is the step time over the batch.

One torch thread. Writes ``fit_cost.md`` and ``fit_cost.jsonl`` under ``--out`` (a rerun skips
done rows).

Usage: python benchmarks/fit_cost.py [--parts budget,step] [--out docs/results/speed]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from flowad import FlowDetector
from flowad.core.threads import torch_threads
from flowad.evaluation.bench import machine_info
from flowad.evaluation.markdown import markdown_table
from flowad.evaluation.results_log import ResultsLog
from flowad.flows.vector import build_vector_flow
from flowad.models import make_detector
from flowad.models.tabular_flow import options

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the speed benchmark's generator, beside this file
from speed import synthetic, timed  # noqa: E402

BUDGETS = (1_250_000, 2_500_000, 5_000_000)
BATCHES = (256, 2048, 4096, 8192, 16384)
OPTIMIZERS = ("adam", "fused_adam")


@contextlib.contextmanager
def row_budget(rows: int) -> Iterator[None]:
    """The automatic step budget set to ``rows`` rows seen for the duration of the block."""
    default = options.ROW_BUDGET
    options.ROW_BUDGET = rows
    try:
        yield
    finally:
        options.ROW_BUDGET = default


def budget_rows(fitted: np.ndarray, held_out: np.ndarray) -> list[dict]:
    """The flow at each budget of :data:`BUDGETS` and Isolation Forest, fitted on ``fitted``."""
    rows = []
    forest_seconds, _ = timed(make_detector("iforest").set_params(random_state=0).fit, fitted)
    rows.append({"part": "budget", "case": "iforest", "fit_seconds": forest_seconds})
    for budget in BUDGETS:
        with row_budget(budget):
            seconds, model = timed(FlowDetector(random_state=0).fit, fitted)
        rows.append({"part": "budget", "case": f"maf budget {budget}", "row_budget": budget,
                     "steps": model.history_.steps, "fit_seconds": seconds,
                     "heldout_log_likelihood": float(np.mean(model.score_samples(held_out))),
                     "ratio_to_iforest": seconds / forest_seconds})
    return rows


def step_milliseconds(batch: int, optimizer: str, steps: int = 40) -> float:
    """Mean milliseconds of one training step of the default flow's network at ``batch`` rows."""
    torch.manual_seed(0)
    flow = build_vector_flow("maf", 10, 5, (64, 64))
    adam = torch.optim.Adam(flow.parameters(), lr=1e-3, weight_decay=1e-5, fused=optimizer == "fused_adam")
    data = torch.as_tensor(synthetic(100_000, seed=2), dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)

    def step() -> None:
        loss = -flow().log_prob(data[torch.randint(0, len(data), (batch,), generator=generator)]).mean()
        adam.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(flow.parameters(), 5.0)
        adam.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def report(frame: pd.DataFrame, machine: dict) -> str:
    lines = ["# Fit cost of the default flow: budget, batch and optimizer", "",
             f"Written by `benchmarks/fit_cost.py`; {machine['cpu_count']} cores, one torch thread, "
             f"{machine['platform']}.", ""]
    budget = frame[frame.part == "budget"]
    if len(budget):
        table = pd.DataFrame({
            "detector": ["Isolation Forest" if c == "iforest" else "flow" for c in budget.case],
            "rows_seen": [_blank_or(v, "{:,.0f}") for v in budget.get("row_budget", np.nan)],
            "steps": [_blank_or(v, "{:,.0f}") for v in budget.get("steps", np.nan)],
            "fit_seconds": budget.fit_seconds.map("{:.1f}".format),
            "heldout_log_likelihood": [_blank_or(v, "{:.3f}") for v in budget.get("heldout_log_likelihood", np.nan)],
            "flow_over_iforest": [_blank_or(v, "{:.1f}x") for v in budget.get("ratio_to_iforest", np.nan)]})
        lines += ["## Step budget, 1M generated rows x 10 columns", "",
                  "Rows seen: the automatic step budget (5,000,000 is the default). Fit seconds include the "
                  "threshold; held-out log-likelihood in nats per row (higher is better).", "",
                  markdown_table(table), ""]
    step = frame[frame.part == "step"]
    if len(step):
        wide = step.pivot(index="batch", columns="case", values="milliseconds_per_step").reset_index()
        for name in OPTIMIZERS:
            if name in wide:
                wide[f"{name}_us_per_row"] = wide[name] * 1e3 / wide["batch"]
        if set(OPTIMIZERS) <= set(wide.columns):
            wide["fused_speedup"] = wide["adam"] / wide["fused_adam"]
        wide["batch"] = wide["batch"].astype(int)
        lines += ["## One training step of the default network", "",
                  "Milliseconds per step (forward, backward, clipping, optimizer) and microseconds per "
                  "row, with PyTorch's default Adam and its fused implementation.", "",
                  markdown_table(wide), ""]
    return "\n".join(lines)


def _blank_or(value, form: str) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else form.format(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="budget,step")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("docs/results/speed"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    log = ResultsLog(args.out / "fit_cost.jsonl", key=("part", "case", "batch"))
    parts = args.parts.split(",")
    with torch_threads(args.threads):
        if "budget" in parts and not log.done(("budget", "iforest", None)):
            for row in budget_rows(synthetic(1_000_000, seed=0), synthetic(100_000, seed=1)):
                row["batch"] = None
                print(row, flush=True)
                log.append(row)
        if "step" in parts:
            for batch in BATCHES:
                for name in OPTIMIZERS:
                    if not log.done(("step", name, batch)):
                        row = {"part": "step", "case": name, "batch": batch,
                               "milliseconds_per_step": step_milliseconds(batch, name)}
                        print(row, flush=True)
                        log.append(row)
    (args.out / "fit_cost.md").write_text(report(pd.DataFrame(log.rows()), machine_info(args.threads)))
    print(f"wrote {args.out / 'fit_cost.md'}")


if __name__ == "__main__":
    main()
