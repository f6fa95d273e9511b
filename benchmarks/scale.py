"""Scale and deployment: Dask and chunked scoring of generated Parquet data, DDP training on CPU
processes, ONNX Runtime against PyTorch scoring. Every ratio is against a peer measured in the same run.

Writes ``docs/results/scale/scale.md`` and ``scale.json``:

- Dask scoring of ``--rows`` rows (10 columns, Parquet files of 1M rows) on a local cluster of
  ``--workers`` worker processes (one thread each): rows per second, peak RSS per worker;
- the local chunked engine on the first 1M rows and on all rows: rows per second and peak RSS added
  (flat memory means the same peak for both);
- DDP training with 2 processes (gloo) against 1 process: seconds per epoch at two batch sizes;
- ONNX Runtime scoring against ``FlowDetector.score_samples`` on the same rows (float64 both).

Usage: python benchmarks/scale.py [--rows 10000000] [--threads 1] [--out docs/results/scale]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import torch
import torch.multiprocessing as mp

from flowad import FlowDetector, FlowOptions, io
from flowad.deploy import dask_client, export_onnx, onnx_scores, score_parquet, score_parquet_dask
from flowad.evaluation.bench import PeakMemory, machine_info
from flowad.evaluation.markdown import markdown_table

FILE_ROWS = 1_000_000
COLUMNS = [f"x{i}" for i in range(10)]


def synthetic(n: int, seed: int) -> np.ndarray:
    """``n`` rows of 10 correlated, partly non-linear columns (as in benchmarks/speed.py)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 5))
    return np.column_stack([base, np.sin(base[:, :3]) + 0.1 * rng.normal(size=(n, 3)), base[:, 3:] ** 2])


def write_data(folder: Path, rows: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, start in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - start)
        path = folder / f"rows{i:03d}.parquet"
        pd.DataFrame(synthetic(n, seed=100 + i), columns=COLUMNS).to_parquet(path, row_group_size=250_000)
        files.append(path)
    return files


class WorkerMemory:
    """Peak RSS of each process in ``pids`` while a block runs (psutil, every ``interval`` s), in MB."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.start = {name: p.memory_info().rss / 2**20 for name, p in self.procs.items()}
        self.peak = dict(self.start)
        self.interval = interval

    def __enter__(self) -> WorkerMemory:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            for name, p in self.procs.items():
                self.peak[name] = max(self.peak[name], p.memory_info().rss / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def bench_dask(model: Path, files: list[Path], out: Path, workers: int) -> dict:
    with dask_client(n_workers=workers, threads_per_worker=1) as client:
        client.run(torch.set_num_threads, 1)
        pids = client.run(os.getpid)
        with WorkerMemory(pids) as memory:
            start = time.perf_counter()
            parts = score_parquet_dask(model, files, out, client=client)
            seconds = time.perf_counter() - start
    rows = sum(pd.read_parquet(p, columns=["label"]).shape[0] for p in parts)
    return {"engine": "dask", "rows": rows, "workers": workers, "seconds": seconds, "rows_per_second": rows / seconds,
            "partitions": len(parts), "worker_idle_rss_mb": list(memory.start.values()),
            "worker_peak_rss_mb": list(memory.peak.values())}


def bench_local(detector, files: list[Path], out: Path) -> dict:
    rows = 0

    def count(n: int) -> None:
        nonlocal rows
        rows += n

    with PeakMemory() as peak:
        start = time.perf_counter()
        score_parquet(detector, files, out, on_chunk=count)
        seconds = time.perf_counter() - start
    return {"engine": "local", "rows": rows, "seconds": seconds, "rows_per_second": rows / seconds,
            "peak_rss_added_mb": peak.peak_mb}


def _ddp_worker(rank: int, world: int, port: int, batch_size: int, epochs: int, rows: int, result: str) -> None:
    torch.set_num_threads(1)
    from flowad.core.distributed import distributed_session

    if world > 1:
        os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(port))
    else:
        os.environ.pop("WORLD_SIZE", None)
    X = synthetic(rows, seed=7)
    stamps = []
    with distributed_session("gloo"):
        detector = FlowDetector("maf", max_epochs=epochs, random_state=0,
                                options=FlowOptions(patience=epochs, batch_size=batch_size))
        start = time.perf_counter()
        detector.fit(X, callback=lambda *_: stamps.append(time.perf_counter()))
    if rank == 0:
        per_epoch = np.diff([start, *stamps])
        Path(result).write_text(json.dumps({"epoch_seconds": per_epoch.tolist(), "restarts": detector.history_.restarts,
                                            "validation_loss": detector.history_.validation_loss}))


def bench_ddp(rows: int, epochs: int, batch_sizes: list[int]) -> list[dict]:
    out = []
    for batch_size in batch_sizes:
        row = {"rows": rows, "batch_size": batch_size, "epochs": epochs}
        for world in (1, 2):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            with tempfile.NamedTemporaryFile(suffix=".json") as handle:
                mp.spawn(_ddp_worker, args=(world, port, batch_size, epochs, rows, handle.name), nprocs=world)
                result = json.loads(Path(handle.name).read_text())
            row[f"seconds_per_epoch_{world}proc"] = float(np.median(result["epoch_seconds"]))
            row[f"final_validation_nll_{world}proc"] = result["validation_loss"][-1]
            row[f"restarts_{world}proc"] = result.get("restarts")
        row["speedup_2proc"] = row["seconds_per_epoch_1proc"] / row["seconds_per_epoch_2proc"]
        out.append(row)
    return out


def bench_onnx(detector, X: np.ndarray, folder: Path) -> dict:
    path = export_onnx(detector, folder / "model.onnx")
    onnx_scores(path, X[:1000])  # warm-up
    start = time.perf_counter()
    onnx = onnx_scores(path, X)
    onnx_seconds = time.perf_counter() - start
    frame = pd.DataFrame(X, columns=COLUMNS)
    start = time.perf_counter()
    reference = detector.score_samples(frame)
    torch_seconds = time.perf_counter() - start
    return {"rows": len(X), "torch_rows_per_second": len(X) / torch_seconds,
            "onnxruntime_rows_per_second": len(X) / onnx_seconds, "onnx_over_torch": torch_seconds / onnx_seconds,
            "max_abs_difference": float(np.abs(onnx - reference).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report-only", action="store_true", help="rewrite scale.md from scale.json")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ddp-rows", type=int, default=50_000)
    parser.add_argument("--ddp-epochs", type=int, default=3)
    parser.add_argument("--onnx-rows", type=int, default=1_000_000)
    parser.add_argument("--scratch", default=None, help="folder for the generated Parquet data (default: a temp dir)")
    parser.add_argument("--out", default="docs/results/scale")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the Dask and DDP worker processes
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        (out / "scale.md").write_text(report(json.loads((out / "scale.json").read_text())))
        return
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="flowad-scale-"))
    results = {"machine": machine_info(args.threads), "rows": args.rows}
    try:
        start = time.perf_counter()
        files = write_data(scratch / "data", args.rows)
        results["generate_seconds"] = time.perf_counter() - start
        detector = FlowDetector("maf", max_epochs=10, random_state=0).fit(synthetic(20_000, seed=1))
        io.save(detector, scratch / "model")
        detector = io.load(scratch / "model")

        results["onnx"] = bench_onnx(detector, synthetic(args.onnx_rows, seed=3), scratch)
        print("onnx", results["onnx"], flush=True)
        warm = scratch / "warm.parquet"  # first-use allocations (Arrow pools, torch) out of the measurement
        pd.read_parquet(files[0]).iloc[:100_000].to_parquet(warm)
        bench_local(detector, [warm], scratch / "warm")
        results["local"] = [bench_local(detector, files[:1], scratch / "local1"),
                            bench_local(detector, files, scratch / "local_all")]
        print("local", results["local"], flush=True)
        results["dask"] = bench_dask(scratch / "model", files, scratch / "dask", args.workers)
        print("dask", results["dask"], flush=True)
        results["ddp"] = bench_ddp(args.ddp_rows, args.ddp_epochs, [256, 2048])
        print("ddp", results["ddp"], flush=True)
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    (out / "scale.md").write_text(report(results))


def report(r: dict) -> str:
    m = r["machine"]
    local1, local_all = r["local"]
    dask = r["dask"]
    lines = [
        "# Scale and deployment", "",
        f"Machine: {m['processor']}, {m['cpu_count']} cores shared with other benchmark runs, torch {m['torch']}, "
        f"{m['torch_threads']} torch thread(s) per process, CUDA: {m['cuda'] or 'none'}. "
        "Model: `FlowDetector('maf')` (5 transforms, 64x64 hidden), float64 scoring, 10 columns.", "",
        "## Out-of-core scoring", "",
        markdown_table(pd.DataFrame([
            {"engine": "local (1 process, chunks of 65,536 rows)", "rows": local1["rows"],
             "rows/s": round(local1["rows_per_second"]), "peak memory": f"+{local1['peak_rss_added_mb']:.0f} MB RSS"},
            {"engine": "local (1 process, chunks of 65,536 rows)", "rows": local_all["rows"],
             "rows/s": round(local_all["rows_per_second"]),
             "peak memory": f"+{local_all['peak_rss_added_mb']:.0f} MB RSS"},
            {"engine": f"dask ({dask['workers']} worker processes x 1 thread, {dask['partitions']} partitions)",
             "rows": dask["rows"], "rows/s": round(dask["rows_per_second"]),
             "peak memory": " / ".join(f"{p:.0f}" for p in dask["worker_peak_rss_mb"]) + " MB RSS per worker "
                            "(idle: " + " / ".join(f"{p:.0f}" for p in dask["worker_idle_rss_mb"]) + ")"},
        ])), "",
        f"Dask over the local engine: {dask['rows_per_second'] / local_all['rows_per_second']:.2f}x the rows per "
        "second, same rows, same run.", "",
        "## Distributed training (DDP, gloo, CPU processes, 1 torch thread each)", "",
        markdown_table(pd.DataFrame([{
            "rows": d["rows"], "batch": d["batch_size"], "s/epoch 1 process": round(d["seconds_per_epoch_1proc"], 2),
            "s/epoch 2 processes": round(d["seconds_per_epoch_2proc"], 2), "speed-up": round(d["speedup_2proc"], 2),
            "val NLL 1 / 2 proc": f"{d['final_validation_nll_1proc']:.4f} / {d['final_validation_nll_2proc']:.4f}",
        } for d in r["ddp"]])), "",
        "Median seconds per epoch. The global batch is the same in both runs (each rank takes half of it), so "
        "the 2-process run follows the 1-process trajectory up to float rounding in the gradient all-reduce; "
        "over many Adam steps that rounding can grow, so the last column shows where the two runs ended.", "",
        "## ONNX Runtime against PyTorch", "",
        markdown_table(pd.DataFrame([{
            "rows": r["onnx"]["rows"], "PyTorch rows/s": round(r["onnx"]["torch_rows_per_second"]),
            "ONNX Runtime rows/s": round(r["onnx"]["onnxruntime_rows_per_second"]),
            "ONNX / PyTorch": round(r["onnx"]["onnx_over_torch"], 2),
            "max |difference|": f"{r['onnx']['max_abs_difference']:.1e}"}])), "",
        "Both score the same float64 rows with one thread; the ONNX graph holds the preprocessing too.", "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
