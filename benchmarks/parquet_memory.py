"""Peak memory of the chunked Parquet engine (``flowad score --engine local``) against file size.

Writes Parquet files of 200k, 2M and 20M rows x 10 columns, in row groups of 200k rows and of 1M
rows (pyarrow's default), then scores each with the default flow in a fresh process and records
that process's peak resident memory above what it holds once the model is loaded. The engine
reads record batches of 65,536 rows without pyarrow's pre-buffering, through a 1 MiB read buffer,
and appends each scored batch to the output; pyarrow still decodes a row group's column chunks at
a time, so the peak follows the row-group size, not the number of rows.
Writes ``parquet_memory.md`` and ``parquet_memory.json`` under ``--out``.

Usage: python benchmarks/parquet_memory.py [--rows 200000,2000000,20000000] [--out docs/results/scale]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from flowad import io
from flowad.deploy.chunked import score_parquet

def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20

detector = io.load(sys.argv[1])
detector.score_samples(__import__("pandas").DataFrame(
    __import__("numpy").zeros((10, 10)), columns=[f"c{i}" for i in range(10)]))
base = rss_mb()
start = time.perf_counter()
score_parquet(detector, [sys.argv[2]], sys.argv[3])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"baseline_mb": base, "peak_mb": peak, "above_baseline_mb": peak - base, "seconds": seconds}))
"""


def write_rows(path: Path, n: int, seed: int = 0, row_group: int = 1_000_000) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    with pq.ParquetWriter(path, pa.schema([(f"c{i}", pa.float64()) for i in range(10)])) as writer:
        for start in range(0, n, row_group):
            m = min(row_group, n - start)
            base = rng.normal(size=(m, 5))
            block = np.column_stack([base, np.sin(base[:, :3]), base[:, 3:] ** 2])
            writer.write_table(pa.table({f"c{i}": block[:, i] for i in range(10)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="200000,2000000,20000000")
    parser.add_argument("--row-groups", default="200000,1000000", help="row-group sizes of the files")
    parser.add_argument("--out", type=Path, default=Path("docs/results/scale"))
    args = parser.parse_args()
    import pandas as pd
    import torch

    from flowad import FlowDetector, io

    torch.set_num_threads(1)
    sizes = [int(v) for v in args.rows.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = np.random.default_rng(1).normal(size=(5000, 10))
        model = FlowDetector(max_epochs=5, calibration="split", random_state=0).fit(
            pd.DataFrame(train, columns=[f"c{i}" for i in range(10)]))
        io.save(model, tmp / "model")
        for group in (int(v) for v in args.row_groups.split(",")):
            for n in sizes:
                data = tmp / f"rows_{n}.parquet"
                write_rows(data, n, row_group=group)
                result = subprocess.run([sys.executable, "-c", CHILD, str(tmp / "model"), str(data),
                                         str(tmp / f"out_{group}_{n}")], capture_output=True, text=True, check=True)
                row = {"row_group": group, "rows": n, **json.loads(result.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(row, flush=True)
                data.unlink()
    for row in rows:
        first = next(r for r in rows if r["row_group"] == row["row_group"])["above_baseline_mb"]
        row["ratio_to_smallest"] = row["above_baseline_mb"] / first if first > 0 else float("nan")
    args.out.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.platform()}, {platform.processor() or platform.machine()}, 1 torch thread"
    (args.out / "parquet_memory.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    lines = ["# Peak memory of the chunked Parquet engine", "",
             f"Default flow, 10 columns, batches of 65,536 rows, one fresh process per file; {machine}.", "",
             "| row group (rows) | rows | peak RSS (MB) | above the loaded model (MB) | ratio to the smallest file | "
             "seconds |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['row_group']:,} | {r['rows']:,} | {r['peak_mb']:.0f} | {r['above_baseline_mb']:.0f} | "
              f"{r['ratio_to_smallest']:.2f} | {r['seconds']:.1f} |" for r in rows]
    (args.out / "parquet_memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
