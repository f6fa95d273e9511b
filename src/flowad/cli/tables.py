"""``flowad fit``, ``flowad score`` and ``flowad evaluate``: a user's own table, end to end.

``fit`` learns which columns are features, ids and labels (:mod:`flowad.core.table_schema`) and
keeps that in the model, so ``score`` and ``evaluate`` read the same columns by name from any file
that has them. ``score`` writes rows that join back to the input: the id columns (or ``row``, the
0-based row number), ``score`` (higher = more normal), ``p_value`` and ``is_anomaly`` (1 = anomaly).
No command writes over one of its inputs, and every file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from flowad import io
from flowad.cli.common import LabelColumn, Quiet, command, csv_list, progress_bar, say
from flowad.cli.scale import ENGINES, score_engine
from flowad.core.calibration import CALIBRATIONS
from flowad.core.distributed import distributed_session, is_main_process
from flowad.core.estimator import BaseDetector, contamination_value
from flowad.core.model_files import check_model_target, is_model
from flowad.core.safe_files import atomic_write_text, check_not_inputs
from flowad.core.table_files import read_table, write_table
from flowad.core.table_schema import LABEL_NAMES, check_labels, infer_schema
from flowad.evaluation.table_report import evaluation_page, score_meaning, scoring_page
from flowad.evaluation.tabular_metrics import evaluate_detector
from flowad.models import available_detectors, make_detector

__all__ = ["evaluate", "fit", "register", "score"]

logger = logging.getLogger("flowad.cli")

Columns = Annotated[str | None, typer.Option(help="Comma-separated feature columns (default: every column not "
                                                  "named by the options below).")]
Drop = Annotated[str | None, typer.Option(help="Comma-separated columns that are not features (time stamps, text).")]
IdColumn = Annotated[str | None, typer.Option("--id-column", help="Comma-separated columns that identify a row; "
                                                                  "copied into the scores.")]
Missing = Annotated[str, typer.Option(help="Missing values: 'error', or 'impute' (median / most frequent value "
                                           "plus a missing-indicator column).")]


def _contamination(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--contamination must be 'auto' or a number in (0, 0.5], got {text!r}") from None
    contamination_value(value)
    return value


def _model_files(model_dir: Path) -> list[Path]:
    return [model_dir, model_dir / io.CONFIG_FILE, model_dir / io.WEIGHTS_FILE]


def _tabular(detector, model_dir: Path) -> BaseDetector:
    kind = type(detector).__name__
    if kind == "WindowDetector":
        raise ValueError(f"{model_dir} holds a series model (WindowDetector); score series with 'flowad ts score'")
    if not isinstance(detector, BaseDetector):
        raise ValueError(f"{model_dir} holds a {kind}, not a table model; image models: 'flowad image score'")
    return detector


def _features(detector: BaseDetector, frame: pd.DataFrame, source: str, label_column: str | None = None):
    """What to pass to ``score_samples``: the table itself when the model selects its columns by
    name; for models fitted on plain arrays, the numeric columns in file order."""
    if getattr(detector, "schema_", None) is not None:
        return frame
    names = getattr(detector, "feature_names_in_", None)
    if names is not None:
        missing = [str(n) for n in names if str(n) not in frame.columns]
        if missing:
            raise ValueError(f"{source} lacks the model's feature column(s) {missing[:8]}")
        return frame[[str(n) for n in names]]
    columns = [c for c in frame.columns if c != label_column]
    if len(columns) != detector.n_features_in_:
        raise ValueError(f"{source} has {len(columns)} columns besides the label, the model (fitted on an array "
                         f"without column names) expects {detector.n_features_in_}")
    return frame[columns].to_numpy(np.float64)


def _feature_values(detector: BaseDetector, frame: pd.DataFrame) -> pd.DataFrame | None:
    """The columns of ``frame`` the model reads, as read (for the scoring page), or None when the
    model was fitted on an array without column names."""
    schema = getattr(detector, "schema_", None)
    names = [c.name for c in schema.features] if schema is not None else getattr(detector, "feature_names_in_", None)
    if names is None:
        return None
    return frame[[str(n) for n in names if str(n) in frame.columns]]


def fit(
    data: Annotated[Path, typer.Argument(help="Training data: .csv, .parquet or .npz (X, y).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model folder to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"Detector: {', '.join(available_detectors())}.")] = "maf",
    columns: Columns = None,
    drop: Drop = None,
    id_column: IdColumn = None,
    label_column: LabelColumn = None,
    missing: Missing = "error",
    include_anomalies: Annotated[
        bool, typer.Option(help="Also train on rows labelled 1 (default: fit on the normal rows only).")
    ] = False,
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs (torch detectors).")] = None,
    contamination: Annotated[str, typer.Option(help="'auto' (1%) or the share of new normal rows to flag.")] = "auto",
    calibration: Annotated[str, typer.Option(help=f"Where the threshold comes from: {', '.join(CALIBRATIONS)}.")
                           ] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
    distributed: Annotated[bool, typer.Option(
        help="Data-parallel training across the processes of a torchrun launch "
             "(torchrun --nproc-per-node N -m flowad fit ... --distributed); rank 0 saves.")] = False,
    backend: Annotated[str, typer.Option(help="With --distributed: gloo (CPU), nccl (GPU) or auto.")] = "auto",
) -> None:
    """Fit a detector on DATA and save it to a model folder."""
    # everything that can fail without training is checked first
    detector = make_detector(model)
    if not is_model(detector):
        raise ValueError(f"--model {model} is a benchmark peer that cannot be saved (PyOD models need pickle); use it "
                         f"with 'flowad bench', or choose one of {', '.join(available_detectors())}")
    params = detector.get_params()
    updates = {"contamination": _contamination(contamination), "calibration": calibration}
    if calibration not in CALIBRATIONS:
        raise ValueError(f"--calibration must be one of {', '.join(CALIBRATIONS)}, got {calibration!r}")
    if "random_state" in params:
        updates["random_state"] = seed
    if epochs is not None:
        if "max_epochs" not in params:
            raise ValueError(f"--epochs applies to torch detectors only, not {model!r}")
        updates["max_epochs"] = epochs
    detector.set_params(**updates)
    check_model_target(output)
    check_not_inputs(output, [data], "--output")
    frame = read_table(data)
    schema, notes = infer_schema(frame, columns=csv_list(columns), drop=csv_list(drop),
                                 id_columns=csv_list(id_column), label_column=label_column, missing=missing)
    for note in notes:
        say(note)
    train = frame
    left_out = 0
    if schema.label_column is not None and not include_anomalies:
        normal = schema.labels(frame) == 0
        left_out = int((~normal).sum())
        train = frame.loc[normal]
    with distributed_session(backend) if distributed else contextlib.nullcontext():
        main = is_main_process()
        _fit(detector, train, schema, quiet or not main, include_anomalies)
        if not main:
            return
        io.save(detector, output)
    extra = f"; label {schema.label_column!r}" if schema.label_column else ""
    if left_out:
        extra += f" ({left_out} rows labelled 1 left out)"
    ids = f"; ids {', '.join(schema.id_columns)}" if schema.id_columns else ""
    say(f"saved {model} model to {output}: {len(train)} rows, {len(schema.features)} features "
        f"({', '.join(schema.feature_names[:12])}{' ...' if len(schema.features) > 12 else ''}){ids}{extra}; "
        f"threshold calibrated ({detector.calibration_.method if detector.calibration_ else 'chi2'}) to flag "
        f"{contamination_value(detector.contamination):.2%} of normal rows")


def _fit(detector: BaseDetector, train: pd.DataFrame, schema, quiet: bool, include_anomalies: bool) -> None:
    roles = dict(columns=schema.feature_names, id_columns=schema.id_columns, label_column=schema.label_column,
                 missing=schema.missing)
    epochs = detector.get_params().get("max_epochs")
    with progress_bar(quiet) as progress, warnings.catch_warnings():
        if include_anomalies:
            warnings.filterwarnings("ignore", message=".*labelled 1.*fitted as normal rows")
        task = progress.add_task(f"fit {type(detector).__name__}", total=None, status="")
        state = {"stage": 0}

        def stage(index: int, total: int, what: str) -> None:
            state["stage"] = index
            progress.update(task, total=total * epochs if epochs else total,
                            completed=index * epochs if epochs else index, status=what)

        def epoch(e: int, train_loss: float, validation_loss: float) -> None:
            progress.update(task, completed=state["stage"] * epochs + e + 1,
                            status=f"fit {state['stage'] + 1}: validation loss {validation_loss:.4g}")

        detector.fit(train, **roles, stage=stage, callback=epoch if epochs else None)


def score(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by 'flowad fit'.")],
    data: Annotated[list[Path], typer.Argument(
        help="Data to score: one .csv, .parquet or .npz file; for --engine local/dask Parquet files, folders "
             "or globs.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Scores to write: .csv or .parquet (memory engine; default scores.csv), or a folder "
                               "of Parquet parts (local and dask engines; default scores/).")] = None,
    id_column: IdColumn = None,
    report: Annotated[Path | None, typer.Option(
        help="Also write an HTML page: score histogram, threshold, flagged share, least normal rows.")] = None,
    engine: Annotated[str, typer.Option(
        help=f"{' | '.join(ENGINES)}: one file in memory; Parquet chunk by chunk in this process (flat memory); "
             "Parquet partitions on Dask.")] = "memory",
    scheduler: Annotated[str | None, typer.Option(
        help="Dask scheduler address (tcp://host:8786); default: a local cluster.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes of the local Dask cluster.")] = 2,
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk (local engine).")] = 65_536,
    quiet: Quiet = False,
) -> None:
    """Score every row of DATA: id (or row), score (higher = more normal), p_value, is_anomaly (1 = anomaly)."""
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    inputs = [*data, *_model_files(model_dir)]
    if report is not None:
        check_not_inputs(report, inputs, "--report")
    if engine != "memory":
        if report is not None:
            raise ValueError("--report applies to the memory engine")
        output = output or Path("scores")
        check_not_inputs(output, inputs, "--output")
        score_engine(engine, model_dir, data, output, id_columns=csv_list(id_column), scheduler=scheduler,
                     workers=workers, chunk_rows=chunk_rows, quiet=quiet)
        return
    if len(data) != 1:
        raise ValueError(f"the memory engine scores one file, got {len(data)}; use --engine local or dask")
    data, output = data[0], output or Path("scores.csv")
    check_not_inputs(output, inputs, "--output")
    if output.is_dir():
        raise ValueError(f"--output {str(output)!r} is a folder; give a file name ending in .csv or .parquet")
    detector = _tabular(io.load(model_dir), model_dir)
    frame = read_table(data)
    ids = csv_list(id_column)
    with progress_bar(quiet) as progress:
        progress.add_task(f"score {len(frame)} rows", total=None, status="")
        table = _score_table(detector, frame, data.name, ids)
    write_table(table, output)
    flagged = int(table["is_anomaly"].sum())
    rate = contamination_value(detector.contamination)
    say(f"scored {len(table)} rows: {flagged} flagged as anomalies ({flagged / len(table):.2%}; the model is "
        f"calibrated to flag {rate:.2%} of normal rows) -> {output}")
    if report is not None:
        atomic_write_text(report, scoring_page(table, offset=detector.offset_, contamination=rate,
                                               title=f"{model_dir.name} on {data.name}",
                                               score_meaning=score_meaning(detector),
                                               values=_feature_values(detector, frame)))
        say(f"report written to {report}")


def _score_table(detector: BaseDetector, frame: pd.DataFrame, source: str, ids: list[str] | None) -> pd.DataFrame:
    features = _features(detector, frame, source)
    table = detector.score_table(features, id_columns=None if not isinstance(features, pd.DataFrame) else ids)
    if not isinstance(features, pd.DataFrame) and ids:  # a model without a schema: ids copied here
        missing = [n for n in ids if n not in frame.columns]
        if missing:
            raise ValueError(f"--id-column: no column {missing} in {source}")
        table = pd.concat([frame[ids].reset_index(drop=True), table.drop(columns="row")], axis=1)
    schema = getattr(detector, "schema_", None)
    if schema is not None and not ids and schema.id_columns and "row" in table.columns:
        logger.info("%s lacks the model's id column(s) %s: rows are numbered instead", source, schema.id_columns)
    return table


def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="Model folder written by 'flowad fit'.")],
    data: Annotated[Path, typer.Argument(help="Labelled data: .csv, .parquet or .npz (X, y).")],
    label_column: Annotated[str | None, typer.Option(
        "--label-column", "-l", help="Column with labels, 1 = anomaly (default: the model's label column).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="JSON file for the metrics.")] = Path("metrics.json"),
    report: Annotated[Path | None, typer.Option(
        help="HTML page with histograms, ROC and PR curves (default: the metrics file with .html).")] = None,
    quiet: Quiet = False,
) -> None:
    """Evaluate a saved model on labelled DATA: ROC-AUC, PR-AUC, precision/recall/F1, alarm rate."""
    report = report or output.with_suffix(".html")
    inputs = [data, *_model_files(model_dir)]
    check_not_inputs(output, inputs, "--output")
    check_not_inputs(report, inputs, "--report")
    if report == output:
        raise ValueError("--report and --output must be different files")
    detector = _tabular(io.load(model_dir), model_dir)
    frame = read_table(data)
    label = _label_column(detector, frame, label_column, data.name)
    y = check_labels(frame[label], label)
    if y.min() == y.max():
        raise ValueError(f"{data.name}: the label column {label!r} holds only {'anomalies' if y[0] else 'normal rows'};"
                         f" evaluation needs both")
    features = _features(detector, frame, data.name, label)
    scores = detector.score_samples(features)
    metrics = evaluate_detector(detector, features, y).as_dict()
    metrics["alarm_rate_normal"] = float((scores[y == 0] < detector.offset_).mean())
    metrics["contamination"] = contamination_value(detector.contamination)
    atomic_write_text(output, json.dumps(metrics, indent=2) + "\n")
    title = f"{model_dir.name} on {data.name}"
    atomic_write_text(report, evaluation_page(y, scores, offset=detector.offset_, metrics=metrics,
                                              contamination=metrics["contamination"], title=title))
    _print_metrics(title, metrics)
    say("precision/recall/F1 at the model's own threshold; best_f1 is optimistic (test-tuned).")
    say(f"metrics written to {output}, report to {report}")


def _label_column(detector: BaseDetector, frame: pd.DataFrame, given: str | None, source: str) -> str:
    if given is not None:
        if given not in frame.columns:
            raise ValueError(f"--label-column {given!r} is not a column of {source} "
                             f"(columns: {list(frame.columns)[:12]})")
        return given
    schema = getattr(detector, "schema_", None)
    if schema is not None and schema.label_column is not None:
        if schema.label_column not in frame.columns:
            raise ValueError(f"{source} lacks the model's label column {schema.label_column!r}; give --label-column")
        return schema.label_column
    found = [str(c) for c in frame.columns if str(c).lower() in LABEL_NAMES]
    if len(found) == 1:
        return found[0]
    raise ValueError(f"{source}: which column holds the labels? give --label-column (1 = anomaly)")


def _print_metrics(title: str, metrics: dict) -> None:
    from rich.table import Table

    from flowad.cli.common import out

    view = Table(title=title)
    view.add_column("metric")
    view.add_column("value", justify="right")
    for name, value in metrics.items():
        view.add_row(name, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(view)


def register(app: typer.Typer) -> None:
    """Add the table commands to the ``flowad`` app."""
    command(app, "fit")(fit)
    command(app, "score")(score)
    command(app, "evaluate")(evaluate)
