"""``flowad ts ...``: window detectors on series (fit, batch and streaming scores, benchmark) and
``flowad data vehicle``: the vehicle-sensor generator as a CSV file.

A series file is a CSV with one row per point and one numeric column per channel; ``--columns``
picks channels, ``--label-column`` and ``--drop`` name columns that are not channels (a label or
time stamp column).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from flowad import io
from flowad.cli.common import Quiet, command, csv_list, out, progress_bar, say
from flowad.cli.data import data_app
from flowad.core.safe_files import check_not_inputs
from flowad.core.table_files import write_table
from flowad.datasets.vehicle import FAULT_KINDS, vehicle_sensors
from flowad.models import available_detectors
from flowad.timeseries import StreamingScorer, WindowDetector

__all__ = ["ts_app"]

ts_app = typer.Typer(no_args_is_help=True, help="Series: sliding-window detectors, streaming scores, benchmark.")

Columns = Annotated[str | None, typer.Option(help="Comma-separated channel columns (default: all but dropped).")]
Drop = Annotated[str | None, typer.Option(help="Comma-separated columns that are not channels (time stamps).")]
LabelColumn = Annotated[str | None, typer.Option("--label-column", "-l", help="Label column (left out of channels).")]


def _channels(frame: pd.DataFrame, columns: str | None, drop: str | None, label_column: str | None,
              source: str) -> pd.DataFrame:
    names = csv_list(columns)
    if names is not None:
        missing = [n for n in names if n not in frame]
        if missing:
            raise ValueError(f"--columns {missing} are not in {source} (columns: {list(frame.columns)})")
        frame = frame[names]
    else:
        skip = set(csv_list(drop) or []) | ({label_column} if label_column else set())
        frame = frame[[c for c in frame.columns if c not in skip]]
    if frame.shape[1] == 0:
        raise ValueError(f"{source} has no channel columns left")
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"columns {bad} of {source} are not numeric; give --columns or --drop")
    return frame


def _model_columns(detector: WindowDetector, columns: str | None) -> str | None:
    """The channels the model was fitted on, when no --columns are given."""
    if columns is None and hasattr(detector, "feature_names_in_"):
        return ",".join(map(str, detector.feature_names_in_))
    return columns


def _read_series(path: Path, columns: str | None, drop: str | None, label_column: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"series file not found: {path}")
    try:
        frame = pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ValueError(f"{path.name}: could not read ({error})") from error
    return _channels(frame, columns, drop, label_column, path.name)


@command(ts_app, "fit")
def fit(
    data: Annotated[Path, typer.Argument(help="Training series (.csv), normal behaviour.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"Window model: {', '.join(available_detectors())}.")
                     ] = "maf",
    window: Annotated[int, typer.Option(help="Window length in points.")] = 16,
    stride: Annotated[int, typer.Option(help="Step between windows (1..window).")] = 1,
    difference: Annotated[int, typer.Option(help="0, or 1 for first differences inside windows.")] = 0,
    standardize: Annotated[bool, typer.Option(help="Standardise each channel with training statistics.")] = True,
    point_score: Annotated[str, typer.Option(help="max (most anomalous covering window) or mean.")] = "max",
    contamination: Annotated[str, typer.Option(help="'auto' (1%) or share of held-out points flagged.")] = "auto",
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs (torch models).")] = None,
    columns: Columns = None,
    drop: Drop = None,
    label_column: LabelColumn = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Fit a window detector on the series in DATA and save it."""
    frame = _read_series(data, columns, drop, label_column)
    params = {"max_epochs": epochs} if epochs is not None else {}
    try:
        share = contamination if contamination == "auto" else float(contamination)
    except ValueError:
        raise ValueError(f"--contamination must be 'auto' or a number in (0, 0.5], got {contamination!r}") from None
    detector = WindowDetector(model, window=window, stride=stride, difference=difference, standardize=standardize,
                              point_score=point_score, contamination=share, detector_params=params or None,
                              random_state=seed)
    with progress_bar(quiet) as progress:
        task = progress.add_task(f"fit {model}", total=epochs or None, status="")
        detector.fit(frame.astype(np.float64),
                     callback=lambda e, t, v: progress.update(task, completed=e + 1, status=f"val {v:.4g}"))
    io.save(detector, output)
    out.print(f"saved {model} window model ({len(frame)} points, {frame.shape[1]} channels "
              f"{', '.join(map(str, frame.columns))}, window {window}) to {output}")


def _follow(detector: WindowDetector, columns: str | None, drop: str | None, label_column: str | None) -> int:
    """Score CSV lines from standard input as they come; returns the number of points."""
    stdin = typer.get_text_stream("stdin")
    stdout = sys.stdout
    scorer = StreamingScorer(detector)
    header = stdin.readline()
    if not header:
        raise ValueError("--follow: standard input is empty (expected a CSV header line)")
    names = [n.strip() for n in header.strip().split(",")]
    picked = _channels(pd.DataFrame(columns=names, dtype=float), columns, drop, label_column, "the header")
    index = [names.index(c) for c in picked.columns]
    if len(index) != detector.n_features_in_:
        raise ValueError(f"the header has {len(index)} channels ({', '.join(picked.columns)}), but the model was "
                         f"fitted on {detector.n_features_in_}")
    offset, emitted, line_no = detector.offset_, 0, 1

    def emit(scores: np.ndarray) -> None:
        nonlocal emitted
        for value, p_value in zip(scores, detector.p_values_of_scores(scores), strict=True):
            stdout.write(f"{emitted},{float(value)!r},{float(p_value)!r},{int(value < offset)}\n")
            emitted += 1
        stdout.flush()

    stdout.write("row,score,p_value,is_anomaly\n")
    stdout.flush()
    for line in iter(stdin.readline, ""):
        line_no += 1
        if not line.strip():
            continue
        cells = line.strip().split(",")
        try:
            point = np.array([float(cells[i]) for i in index])
        except (ValueError, IndexError):
            raise ValueError(f"--follow: line {line_no} is not {len(names)} numbers: {line.strip()!r}") from None
        emit(scorer.partial_score(point[None, :]))
    emit(scorer.flush())
    return emitted


@command(ts_app, "score")
def score(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by 'flowad ts fit'.")],
    data: Annotated[Path | None, typer.Argument(help="Series to score (.csv); omit with --follow.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write (batch mode).")] = Path(
        "scores.csv"),
    follow: Annotated[bool, typer.Option(
        help="Read CSV lines (header first) from standard input and write 'row,score,p_value,is_anomaly' lines "
             "as scores become final (window - 1 points after each point arrives; the rest at the end of input).")
    ] = False,
    columns: Columns = None,
    drop: Drop = None,
    label_column: LabelColumn = None,
    quiet: Quiet = False,
) -> None:
    """Score every point: row, score (higher = more normal), p_value, is_anomaly (1 = anomaly)."""
    if follow:
        logging.getLogger().setLevel(logging.WARNING)  # standard output carries the scores
    detector = io.load(model_dir)
    if not isinstance(detector, WindowDetector):
        raise ValueError(f"{model_dir} is a {type(detector).__name__}, not a window model; use 'flowad score'")
    if follow:
        if data is not None:
            raise ValueError("--follow reads standard input; do not give DATA")
        _follow(detector, _model_columns(detector, columns), drop, label_column)
        return
    if data is None:
        raise ValueError("DATA is required unless --follow is given")
    check_not_inputs(output, [data, model_dir / io.CONFIG_FILE, model_dir / io.WEIGHTS_FILE], "--output")
    if output.is_dir():
        raise ValueError(f"--output {str(output)!r} is a folder; give a file name ending in .csv or .parquet")
    frame = _read_series(data, _model_columns(detector, columns), drop, label_column)
    scores = detector.score_samples(frame.astype(np.float64))
    flagged = (scores < detector.offset_).astype(np.int8)
    write_table(pd.DataFrame({"row": np.arange(len(scores)), "score": scores,
                              "p_value": detector.p_values_of_scores(scores), "is_anomaly": flagged}), output)
    say(f"scored {len(scores)} points: {int(flagged.sum())} flagged as anomalies -> {output}")


@command(data_app, "vehicle")
def vehicle(
    output: Annotated[Path, typer.Argument(help="CSV file to write.")],
    n: Annotated[int, typer.Option("--n", help="Number of points (1 per second).")] = 10_000,
    faults: Annotated[str, typer.Option(help=f"Comma-separated fault kinds ({', '.join(FAULT_KINDS)}); "
                                              "'none' for a clean drive.")] = ",".join(FAULT_KINDS),
    per_kind: Annotated[int, typer.Option(help="Faults of each kind.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write a generated vehicle-sensor drive: 5 channels, 'label' (1 = fault) and 'fault' (its kind)."""
    kinds = () if faults.strip() == "none" else tuple(csv_list(faults) or ())
    drive = vehicle_sensors(n, faults=kinds, n_per_kind=per_kind, random_state=seed)
    frame = pd.DataFrame(drive.values, columns=drive.channels).assign(label=drive.labels, fault=drive.kinds)
    frame.to_csv(output, index=False)
    out.print(f"{n} points, {len(drive.faults)} faults ({int(drive.labels.sum())} faulty points) -> {output}")
