"""The ``flowad`` command line. Every command only calls the library API."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table as RichTable

from flowad import io
from flowad._version import __version__
from flowad.cli.common import LabelColumn, Quiet, csv_list, err, integer, out, progress_bar, setup_logging
from flowad.cli.iact import iact_app
from flowad.cli.images import data_app, image_app
from flowad.cli.scale import ENGINES, export, score_engine
from flowad.cli.study import study_app
from flowad.cli.synth import synth_app
from flowad.cli.timeseries import ts_app
from flowad.datasets import read_table
from flowad.detectors import FlowDetector, available_detectors, available_peers, make_detector
from flowad.detectors.distributed import distributed_session, is_main_process
from flowad.evaluation import evaluate_detector, run_demo
from flowad.evaluation.bench import BenchConfig, run_bench
from flowad.evaluation.report import write_report

__all__ = ["app", "main"]

logger = logging.getLogger("flowad.cli")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="flowad: anomaly and rare-event detection with normalizing flows.",
)
app.add_typer(image_app, name="image")
app.add_typer(data_app, name="data")
app.add_typer(iact_app, name="iact")
app.add_typer(synth_app, name="synth")
app.add_typer(ts_app, name="ts")
app.add_typer(study_app, name="study")


def _features(table, names_from_file: bool):
    """Features as a DataFrame for named (CSV/Parquet) columns, so names are checked at score time."""
    return pd.DataFrame(table.X, columns=table.feature_names) if names_from_file else table.X


def _named(path: Path) -> bool:
    return path.suffix.lower() != ".npz"


@app.command()
def fit(
    data: Annotated[Path, typer.Argument(help="Training data: .csv, .parquet or .npz (X, y).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"Detector: {', '.join(available_detectors())}.")] = "maf",
    label_column: LabelColumn = None,
    include_anomalies: Annotated[
        bool, typer.Option(help="Also train on rows labelled 1 (default: fit on the normal rows only).")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs (torch detectors).")] = None,
    contamination: Annotated[str, typer.Option(help="'auto' (1%) or share of normal rows flagged.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
    distributed: Annotated[bool, typer.Option(
        help="Data-parallel training across the processes of a torchrun launch "
             "(torchrun --nproc-per-node N -m flowad fit ... --distributed); rank 0 saves.")] = False,
    backend: Annotated[str, typer.Option(help="With --distributed: gloo (CPU), nccl (GPU) or auto.")] = "auto",
) -> None:
    """Fit a detector on DATA and save it to a model directory."""
    if distributed:
        args = {k: v for k, v in locals().items() if k != "distributed"}
        with distributed_session(backend):
            fit(**args)
        return
    quiet = quiet or not is_main_process()
    setup_logging(quiet)
    table = read_table(data, label_column)
    X = _features(table, _named(data))
    if table.y is not None and not include_anomalies:
        keep = table.y == 0
        X = X[keep] if isinstance(X, np.ndarray) else X.loc[keep]
        logger.info("training on %d normal rows (%d labelled anomalies left out)", keep.sum(), (~keep).sum())
    detector = make_detector(model)
    params = detector.get_params()
    detector.set_params(contamination=contamination if contamination == "auto" else _share(contamination))
    if "random_state" in params:
        detector.set_params(random_state=seed)
    if epochs is not None:
        if "max_epochs" not in params:
            raise ValueError(f"--epochs applies to torch detectors only, not {model!r}")
        detector.set_params(max_epochs=epochs)
    if "max_epochs" in detector.get_params():
        with progress_bar(quiet) as progress:
            task = progress.add_task(f"fit {model}", total=detector.get_params()["max_epochs"], status="")
            label = "val NLL" if isinstance(detector, FlowDetector) else "val loss"
            detector.fit(X, callback=lambda e, t, v: progress.update(task, completed=e + 1, status=f"{label} {v:.4g}"))
    else:
        detector.fit(X)
    if not is_main_process():
        return
    io.save(detector, output)
    out.print(f"saved {model} model ({len(X)} rows, {table.X.shape[1]} features) to {output}")


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"contamination must be 'auto' or a number in (0, 0.5], got {text!r}") from None


@app.command()
def score(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by 'flowad fit'.")],
    data: Annotated[list[Path], typer.Argument(
        help="Data to score: one .csv, .parquet or .npz file; for --engine local/dask Parquet files, folders "
             "or globs.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="CSV file to write (memory engine; default scores.csv), or a folder of Parquet "
                               "parts (local and dask engines; default scores/).")] = None,
    label_column: LabelColumn = None,
    engine: Annotated[str, typer.Option(
        help=f"{' | '.join(ENGINES)}: one file in memory; Parquet chunk by chunk in this process (flat memory); "
             "Parquet partitions on Dask.")] = "memory",
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786); default: a local cluster.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes of the local Dask cluster.")] = 2,
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk (local engine).")] = 65_536,
    quiet: Quiet = False,
) -> None:
    """Score every row of DATA: writes 'score' (higher = more normal) and 'label' (+1 normal, -1 anomaly)."""
    setup_logging(quiet)
    if engine != "memory":
        score_engine(engine, model_dir, data, output or Path("scores"), label_column=label_column,
                     scheduler=scheduler, workers=workers, chunk_rows=chunk_rows, quiet=quiet)
        return
    if len(data) != 1:
        raise ValueError(f"the memory engine scores one file, got {len(data)}; use --engine local or dask")
    data, output = data[0], output or Path("scores.csv")
    detector = io.load(model_dir)
    table = read_table(data, label_column)
    X = _features(table, _named(data))
    scores = detector.score_samples(X)
    labels = np.where(scores < detector.offset_, -1, 1)
    if output.exists() and output.is_dir():
        raise ValueError(f"--output {str(output)!r} is a directory; give a CSV file name")
    pd.DataFrame({"score": scores, "label": labels}).to_csv(output, index=False)
    out.print(f"scored {len(scores)} rows: {int((labels == -1).sum())} flagged as anomalies -> {output}")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by 'flowad fit'.")],
    data: Annotated[Path, typer.Argument(help="Labelled data: .csv, .parquet or .npz (X, y).")],
    label_column: LabelColumn = "y",
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file for the metrics.")] = Path("metrics.json"),
    quiet: Quiet = False,
) -> None:
    """Evaluate a saved model on labelled DATA: ROC-AUC, PR-AUC, precision/recall/F1."""
    setup_logging(quiet)
    detector = io.load(model_dir)
    table = read_table(data, label_column)
    if table.y is None:
        raise ValueError(f"{data.name} has no labels; give --label-column (for .npz files, an array y)")
    metrics = evaluate_detector(detector, _features(table, _named(data)), table.y).as_dict()
    output.write_text(json.dumps(metrics, indent=2))
    view = RichTable(title=f"{model_dir} on {data.name}")
    view.add_column("metric")
    view.add_column("value", justify="right")
    for name, value in metrics.items():
        view.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(view)
    out.print("precision/recall/F1 at the model's own threshold; best_f1 is optimistic (test-tuned).")
    out.print(f"metrics written to {output}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Compare every detector on scikit-learn's breast-cancer set and write a small report."""
    setup_logging(True)
    names = available_detectors()
    with progress_bar(quiet) as progress:
        task = progress.add_task("demo", total=len(names), status="")

        def advance(name: str) -> None:
            done = names.index(name)
            progress.update(task, completed=done, status=f"fitting {name}")

        table = run_demo(output, random_state=seed, on_detector=advance)
        progress.update(task, completed=len(names))
    view = RichTable(title="Breast cancer (benign = normal, malignant = anomaly), one-class split")
    for column in table.columns:
        view.add_column(column, justify="left" if column == "detector" else "right")
    for row in table.itertuples(index=False):
        view.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    out.print(view)
    out.print(f"report written to {output}/ (metrics.md, metrics.csv, roc.png, histograms.png)")


@app.command()
def bench(
    suite: Annotated[list[str], typer.Option(
        help="Folder of ADBench .npz files, an ADBench suite name (classical, mvtec_resnet18) or 'builtin'. "
             "Repeatable.")] = ["classical"],  # noqa: B006 - typer needs a list default
    datasets: Annotated[str | None, typer.Option(help="Comma-separated data set names to keep.")] = None,
    detectors: Annotated[str | None, typer.Option(
        help="Comma-separated registry names (default: flowad's detectors plus the PyOD peers installed).")] = None,
    protocols: Annotated[str, typer.Option(help="oneclass and/or unsupervised, comma-separated.")] = "oneclass",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    max_rows: Annotated[int, typer.Option(help="Subsample larger sets to this many rows (0: keep all).")] = 20_000,
    roc_datasets: Annotated[str | None, typer.Option(help="Sets whose ROC curves go into the report.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch threads for the run.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results and report folder.")] = Path("runs/bench"),
    quiet: Quiet = False,
) -> None:
    """Benchmark detectors on data-set suites; resumes an interrupted run in the same folder."""
    setup_logging(True)
    config = BenchConfig(
        suites=suite,
        datasets=csv_list(datasets),
        detectors=csv_list(detectors) or available_detectors() + available_peers(),
        protocols=csv_list(protocols),
        seeds=[integer(s, "seeds") for s in csv_list(seeds) or []],
        max_rows=max_rows or None,
        roc_datasets=csv_list(roc_datasets) or [],
        torch_threads=threads,
    )
    with progress_bar(quiet) as progress:
        task = progress.add_task("bench", total=None, status="")
        run_bench(config, output, on_job=lambda done, total, what: progress.update(
            task, completed=done, total=total, status=what))
    md, page = write_report(output)
    out.print(f"results: {output}/results.csv; report: {md} and {page}")


app.command()(export)


@app.command()
def version() -> None:
    """Print the flowad version."""
    out.print(__version__)


def main() -> None:
    """Entry point: runs the app; user errors print one line and exit with status 1."""
    try:
        app()
    except (ValueError, TypeError, FileNotFoundError, OSError) as error:
        err.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
