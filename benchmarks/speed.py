"""Speed of the default flow detector against Isolation Forest and PyOD's ECOD, in the same run.

Writes ``docs/results/speed/speed.md`` and ``speed.json``:

- **Scaling**: fit seconds on 10k, 100k, 1M and 10M generated rows x 10 columns (correlated,
  non-Gaussian), and seconds to score 100,000 new rows, for the default ``FlowDetector`` and
  flowad's Isolation Forest and ECOD adapters (the same contract: each fit includes setting the
  threshold); ratios flow / peer; the flow's steps, batch and held-out log-likelihood.
- **Scoring rate**: rows per second on one thread, batches of 65,536 rows, against the float32
  matrix-multiply rate measured in the same process (floating-point operations per row counted
  by PyTorch's FLOP counter), with the flow's network in float32 (the default) and float64.
- **Threads**: one fit alone and beside a CPU-bound process, with flowad's thread choice and with
  PyTorch's default of one thread per core.
- **Memory**: peak memory added while scoring 100k and 1M rows (scoring runs in chunks).

Usage: python benchmarks/speed.py [--sizes 10000,100000] [--parts scaling] [--out docs/results/speed]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from flowad import FlowDetector, make_detector
from flowad.core.threads import torch_threads
from flowad.evaluation.bench import PeakMemory, machine_info
from flowad.evaluation.markdown import markdown_table
from flowad.models.tabular_flow.options import FlowOptions

PEERS = ["iforest", "pyod_ecod"]
SIZES = "10000,100000,1000000,10000000"
#: The tables this benchmark writes, in the order it measures them.
PARTS = ("threads", "scoring_rate", "memory", "scaling")
SCORE_ROWS = 100_000
BATCH = 65_536


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    """``n`` rows of 10 correlated, partly non-linear columns."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 5))
    return np.column_stack([base, np.sin(base[:, :3]) + 0.1 * rng.normal(size=(n, 3)), base[:, 3:] ** 2])


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def scaling_rows(n: int, test: np.ndarray) -> list[dict]:
    """Fit and score seconds of the flow and its peers on ``n`` generated rows."""
    X = synthetic(n, seed=0)
    rows = []
    for name in ["maf", *PEERS]:
        detector = make_detector(name)
        if "random_state" in detector.get_params():
            detector.set_params(random_state=0)
        fit, _ = timed(detector.fit, X)
        score, scores = timed(detector.score_samples, test)
        row = {"rows": n, "detector": name, "fit_seconds": fit, "score_seconds": score}
        if name == "maf":
            history = detector.history_
            row.update(steps=history.steps, epochs=detector.n_epochs_, hit_step_budget=history.hit_step_budget,
                       batch=history.batch_size,
                       heldout_log_likelihood=float(np.mean(scores)))
        rows.append(row)
        print(row, flush=True)
    flow = rows[0]
    for row in rows:
        row["flow_fit_ratio"] = flow["fit_seconds"] / row["fit_seconds"]
        row["flow_score_ratio"] = flow["score_seconds"] / row["score_seconds"]
    return rows


def matmul_rate(size: int = 2048, repeats: int = 10) -> float:
    """Float32 matrix-multiply rate in FLOP/s on the current threads (best of ``repeats``)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = min(timed(torch.mm, a, b)[0] for _ in range(repeats))
    return 2 * size**3 / best


def scoring_rate_rows() -> list[dict]:
    """Rows/s of ``score_samples`` on one thread and its share of the float32 matmul rate."""
    X = synthetic(20_000, seed=2)
    batch = synthetic(BATCH, seed=3)
    rows = []
    for dtype in ("float32", "float64"):
        detector = FlowDetector(max_epochs=2, random_state=0, options=FlowOptions(scoring_dtype=dtype)).fit(X)
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            detector.scoring_(torch.as_tensor(batch))
        flops_per_row = counter.get_total_flops() / BATCH
        with torch_threads(1):
            matmul = matmul_rate()
            seconds = min(timed(detector.score_samples, batch)[0] for _ in range(10))
        rate = BATCH / seconds
        row = {"network": dtype, "rows_per_second": rate, "flops_per_row": flops_per_row,
               "gflops": rate * flops_per_row / 1e9, "matmul_gflops": matmul / 1e9,
               "share_of_matmul": rate * flops_per_row / matmul}
        rows.append(row)
        print(row, flush=True)
    return rows


def _spin() -> None:  # a CPU-bound neighbour
    x = 1.0
    while True:
        x = x * 1.0000001 + 1e-9


def thread_rows() -> list[dict]:
    """One 20k-row fit alone and beside a CPU-bound process, per thread setting."""
    X = synthetic(20_000, seed=4)
    settings = {"flowad (threads=None)": None, f"PyTorch default ({os.cpu_count()} threads)": os.cpu_count()}
    rows = []
    for label, threads in settings.items():
        def fit(threads=threads):
            return FlowDetector(max_epochs=10, threads=threads, random_state=0).fit(X)

        alone, _ = timed(fit)
        neighbour = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
        neighbour.start()
        try:
            time.sleep(1.0)
            beside, _ = timed(fit)
        finally:
            neighbour.terminate()
            neighbour.join()
        row = {"threads": label, "alone_seconds": alone, "beside_busy_process_seconds": beside,
               "slowdown": beside / alone}
        rows.append(row)
        print(row, flush=True)
    return rows


def memory_rows() -> list[dict]:
    detector = FlowDetector(max_epochs=2, random_state=0).fit(synthetic(20_000, seed=5))
    big = synthetic(1_000_000, seed=6)
    rows = []
    for n in (100_000, 1_000_000):
        with PeakMemory() as peak:
            detector.score_samples(big[:n])
        rows.append({"rows_scored": n, "peak_memory_added_mb": peak.peak_mb})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default=SIZES)
    parser.add_argument("--out", default="docs/results/speed")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"Tables to measure again, of {', '.join(PARTS)}; the others are kept from speed.json.")
    args = parser.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--parts: unknown {sorted(unknown)}; choose from {', '.join(PARTS)}")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    kept = json.loads((out / "speed.json").read_text()) if (out / "speed.json").exists() else {}
    results = {"machine": machine_info(args.threads), **{k: v for k, v in kept.items() if k in PARTS}}
    earlier = [p for p in PARTS if p in results and p not in parts]
    if earlier:  # say which tables another run measured, and on what
        results["kept"] = {"parts": earlier, "machine": kept.get("kept", {}).get("machine", kept.get("machine"))}
    if "threads" in parts:
        results["threads"] = thread_rows()
        write(out, results)
    if "scoring_rate" in parts:
        results["scoring_rate"] = scoring_rate_rows()
        write(out, results)
    if "memory" in parts:
        results["memory"] = memory_rows()
        write(out, results)
    if "scaling" in parts:
        test = synthetic(SCORE_ROWS, seed=1)
        results["scaling"] = []
        for n in (int(s) for s in args.sizes.split(",")):
            results["scaling"] += scaling_rows(n, test)
            write(out, results)


def write(out: Path, results: dict) -> None:
    """Write what has been measured so far (a long run keeps its finished tables)."""
    import pandas as pd

    (out / "speed.json").write_text(json.dumps(results, indent=2))
    machine = results["machine"]
    lines = ["# Speed: the default FlowDetector beside Isolation Forest and PyOD's ECOD\n",
             f"Same process, {machine['torch_threads']} torch thread(s), {machine['cpu_count']} cores, "
             f"{machine['platform']}. Ratios are flow time / peer time (above 1: the flow is slower).\n"]
    if results.get("kept"):
        lines += [f"Kept from an earlier run (`--parts`), on {results['kept']['machine'].get('platform', '?')}: "
                  f"{', '.join(results['kept']['parts'])}.\n"]
    if results.get("scaling"):
        lines += ["## Scaling with the rows (10 columns)\n",
                  f"Fit on the generated rows; score {SCORE_ROWS:,} new rows. Each fit includes the "
                  "threshold (calibration scores). The flow's held-out log-likelihood is its mean over the "
                  "new rows (higher is better).\n", markdown_table(pd.DataFrame(results["scaling"])), ""]
    if results.get("scoring_rate"):
        lines += [f"## Scoring rate, one thread, batches of {BATCH:,} rows\n",
                  "Floating-point operations per row counted by PyTorch's FLOP counter (matrix products); "
                  "the matmul rate is a 2048 x 2048 float32 product in the same process.\n",
                  markdown_table(pd.DataFrame(results["scoring_rate"])), ""]
    if results.get("threads"):
        lines += ["## Threads: a 20k-row fit alone and beside a CPU-bound process\n",
                  markdown_table(pd.DataFrame(results["threads"])), ""]
    if results.get("memory"):
        lines += ["## Peak memory added while scoring\n", markdown_table(pd.DataFrame(results["memory"])), ""]
    (out / "speed.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
