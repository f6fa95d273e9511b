"""``flowad iact ...``: toy IACT events, Hillas tables, gamma/hadron separators and their reports.

Data files: events are ``.npz`` files of :func:`flowad.iact.save_events` (``images``, ``labels``,
``camera_name``); feature tables are ``.csv`` or ``.parquet`` files with one row per event (written by
``flowad iact hillas``, or precomputed ones such as the UCI MAGIC columns ``fLength``, ...), labels in
a column (0 or ``g`` = gamma, 1 or ``h`` = hadron, 2 = muon).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table as RichTable

from flowad import io
from flowad.cli.common import Quiet, command, out, progress_bar
from flowad.evaluation.iact_report import write_iact_report
from flowad.iact import load_camera, load_events, save_events, simulate_events
from flowad.iact.pipeline import GammaHadronSeparator
from flowad.models import FlowDetector, FlowRatioClassifier

__all__ = ["iact_app"]

iact_app = typer.Typer(no_args_is_help=True, help="IACT gamma/hadron separation: simulate, Hillas, fit, evaluate.")

_CHUNK = 5000
Camera = Annotated[str | None, typer.Option(help="Camera: magic, lst or a camgeom FITS file (default: from EVENTS).")]
Picture = Annotated[float, typer.Option("--picture", help="Picture threshold of the cleaning (p.e.).")]
Boundary = Annotated[float, typer.Option("--boundary", help="Boundary threshold of the cleaning (p.e.).")]
MinPixels = Annotated[int, typer.Option(help="Fewest pixels after cleaning for a valid event.")]
LabelColumn = Annotated[str, typer.Option("--label-column", "-l", help="Table label column: 0/g gamma, 1/h hadron.")]


def _is_events(path: Path) -> bool:
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".csv", ".parquet", ".pq"):
        raise ValueError(f"data must be events (.npz) or a feature table (.csv, .parquet), got {path.name!r}")
    return suffix == ".npz"


def _labels(values, source: str) -> np.ndarray:
    series = pd.Series(values)
    if series.dtype == object:
        series = series.astype(str).str.strip().map({"g": 0, "h": 1, "0": 0, "1": 1, "2": 2})
    if series.isna().any() or not series.isin((0, 1, 2)).all():
        raise ValueError(f"labels in {source!r} must be 0/g (gamma), 1/h (hadron) or 2 (muon)")
    return series.to_numpy().astype(np.int64)


def _read(path: Path, label_column: str) -> tuple[np.ndarray | pd.DataFrame, np.ndarray | None, str | None]:
    """``(images or feature table, labels or None, camera name or None)`` of a data file."""
    if _is_events(path):
        try:
            with np.load(path, allow_pickle=False) as data:
                if "images" not in data:
                    raise ValueError(f"{path.name}: an events file must hold 'images' (write one with 'flowad iact "
                                     "simulate'); for features use a .csv or .parquet table")
                camera = str(data["camera_name"]) if "camera_name" in data else None
        except (OSError, EOFError) as error:
            raise ValueError(f"{path.name}: not a readable .npz file ({error})") from error
        images, labels, _ = load_events(path)
        return images, _labels(labels, "labels"), camera or None
    try:
        table = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as error:
        raise ValueError(f"{path.name}: could not read ({error})") from error
    labels = _labels(table.pop(label_column), label_column) if label_column in table else None
    return table, labels, None


def _camera_name(option: str | None, from_file: str | None) -> str:
    name = option or from_file
    if not name:
        raise ValueError("--camera is needed: the events file does not name its camera")
    return name


def _table(separator: GammaHadronSeparator, images: np.ndarray, quiet: bool) -> pd.DataFrame:
    """Feature table of many images, in chunks, with a progress bar."""
    parts = []
    with progress_bar(quiet) as progress:
        task = progress.add_task("hillas", total=len(images), status="")
        for start in range(0, len(images), _CHUNK):
            parts.append(separator.feature_table(images[start : start + _CHUNK]))
            progress.update(task, completed=min(start + _CHUNK, len(images)))
    return pd.concat(parts, ignore_index=True) if parts else separator.feature_table(images)


@command(iact_app, "simulate")
def simulate(
    output: Annotated[Path, typer.Option("--output", "-o", help="Events file to write (.npz).")],
    camera: Annotated[str, typer.Option(help="Camera: magic, lst or a camgeom FITS file.")] = "magic",
    n: Annotated[int, typer.Option("--n", help="Number of events.")] = 10_000,
    gamma_fraction: Annotated[float, typer.Option(help="Share of gammas.")] = 0.5,
    muon_fraction: Annotated[float, typer.Option(help="Share of muon rings (label 2).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Simulate toy gamma, hadron (and muon) camera images."""
    if n < 1:
        raise ValueError(f"--n must be a positive number of events, got {n}")
    if output.suffix.lower() != ".npz":
        raise ValueError(f"--output must be a .npz file, got {output.name!r}")
    geometry = load_camera(camera)
    rng = np.random.default_rng(seed)
    images = np.empty((n, geometry.n_pixels), dtype=np.float32)
    labels = np.empty(n, dtype=np.int64)
    with progress_bar(quiet) as progress:
        task = progress.add_task(f"simulate {geometry.name}", total=n, status="")
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            images[start:stop], labels[start:stop], _ = simulate_events(
                geometry, stop - start, gamma_fraction=gamma_fraction, muon_fraction=muon_fraction, random_state=rng)
            progress.update(task, completed=stop)
    save_events(output, images, labels, camera_name=camera)
    counts = np.bincount(labels, minlength=3)
    out.print(f"{n} events ({counts[0]} gammas, {counts[1]} hadrons, {counts[2]} muons) on {geometry.name} -> {output}")


@command(iact_app, "hillas")
def hillas(
    events: Annotated[Path, typer.Argument(help="Events file (.npz) from 'flowad iact simulate'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Table to write: .parquet or .csv.")],
    camera: Camera = None,
    picture: Picture = 6.0,
    boundary: Boundary = 3.0,
    min_pixels: MinPixels = 3,
    quiet: Quiet = False,
) -> None:
    """Clean every image and write its Hillas parameters and MAGIC features (and label) as a table."""
    if output.suffix.lower() not in (".csv", ".parquet"):
        raise ValueError(f"--output must end in .parquet or .csv, got {output.name!r}")
    images, labels, name = _read(events, "label")
    if not isinstance(images, np.ndarray):
        raise ValueError(f"{events.name} is already a feature table; give an events file (.npz)")
    separator = GammaHadronSeparator(_camera_name(camera, name), picture_thresh=picture, boundary_thresh=boundary,
                                     min_pixels=min_pixels)
    table = _table(separator, images, quiet)
    if labels is not None:
        table["label"] = labels
    table.to_csv(output, index=False) if output.suffix.lower() == ".csv" else table.to_parquet(output, index=False)
    n_valid = int(table["valid"].sum())
    out.print(f"{len(table)} events, {n_valid} with valid image parameters ({len(table) - n_valid} left out) "
              f"-> {output}")


@command(iact_app, "fit")
def fit(
    data: Annotated[Path, typer.Argument(help="Training events (.npz) or feature table (.csv, .parquet).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Separator directory to write.")],
    mode: Annotated[str, typer.Option(help="oneclass, twoclass (the other class as known negatives) or ratio (one "
                                           "flow per class, the cut on held-out hadrons).")] = "oneclass",
    train_on: Annotated[str, typer.Option(help="gamma or hadron: the class the flow models.")] = "gamma",
    threshold: Annotated[str, typer.Option(help="conformal (calibrated cut) or chi2 (latent cut).")] = "conformal",
    train_efficiency: Annotated[float, typer.Option(help="Share of training-class events the cut keeps.")] = 0.9,
    unlabelled: Annotated[bool, typer.Option(help="oneclass: ignore labels and fit on every event.")] = False,
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs.")] = None,
    camera: Camera = None,
    picture: Picture = 6.0,
    boundary: Boundary = 3.0,
    min_pixels: MinPixels = 3,
    label_column: LabelColumn = "label",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Fit a flow-based gamma/hadron separator and save it (settings in pipeline.json, flow in detector/)."""
    X, labels, name = _read(data, label_column)
    kind = FlowRatioClassifier if mode == "ratio" else FlowDetector
    detector = kind(random_state=seed) if epochs is None else kind(random_state=seed, max_epochs=epochs)
    separator = GammaHadronSeparator(camera or name, picture_thresh=picture, boundary_thresh=boundary,
                                     min_pixels=min_pixels, detector=detector, mode=mode, train_on=train_on,
                                     threshold=threshold, train_efficiency=train_efficiency)
    if isinstance(X, np.ndarray):
        separator.set_params(camera=_camera_name(camera, name))
        X = _table(separator, X, quiet)
    y = None if unlabelled else labels
    if y is None and mode in ("twoclass", "ratio"):
        raise ValueError(f"--mode {mode} needs labels (column {label_column!r}, or the labels of an events file)")
    with progress_bar(quiet) as progress:
        task = progress.add_task("fit flow", total=detector.max_epochs, status="")
        separator.fit(X, y, callback=lambda e, t, v: progress.update(task, completed=e + 1, status=f"val NLL {v:.4g}"))
    io.save(separator, output)
    flows = "flows of gammas and hadrons" if mode == "ratio" else f"flow of {train_on}s"
    out.print(f"saved {mode} separator ({flows}, {separator.n_train_} events, "
              f"{separator.n_invalid_train_} invalid left out, features {', '.join(separator.features_)}) to {output}")


@command(iact_app, "evaluate")
def evaluate(
    model: Annotated[Path, typer.Argument(help="Separator directory from 'flowad iact fit'.")],
    data: Annotated[Path, typer.Argument(help="Labelled events (.npz) or feature table (.csv, .parquet).")],
    report: Annotated[Path, typer.Option("--report", help="Report folder (report.md, report.html, PNGs).")] = Path(
        "runs/iact_report"),
    label_column: LabelColumn = "label",
    quiet: Quiet = False,
) -> None:
    """Gamma efficiency at fixed hadron acceptances, quality factors, ROC-AUC, and a report."""
    separator = io.load(model)
    if not isinstance(separator, GammaHadronSeparator):
        raise ValueError(f"{model} holds a {type(separator).__name__}, not a gamma/hadron separator (flowad iact fit)")
    X, labels, name = _read(data, label_column)
    if labels is None:
        raise ValueError(f"{data.name} has no labels (column {label_column!r}); evaluation needs them")
    images = X if isinstance(X, np.ndarray) else None
    if images is not None and separator.camera is None:  # fitted on a table: clean with the events' camera
        separator.set_params(camera=_camera_name(None, name))
    table = _table(separator, X, quiet) if images is not None else separator.feature_table(X)
    gammaness, valid = separator.gammaness(table, return_valid=True)
    md, page = write_iact_report(report, labels, {"flow": gammaness}, valid=valid, cuts={"flow": separator.cut_},
                                 table=table, features=separator.features_, images=images,
                                 hillas=separator.hillas_features() if images is not None else None,
                                 title=f"{model.name} on {data.name}")
    metrics = json.loads((report / "metrics.json").read_text())["flow"]
    view = RichTable(title=f"{model} on {data.name}")
    view.add_column("metric")
    view.add_column("value", justify="right")
    for key, value in metrics.items():
        view.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    out.print(view)
    out.print(f"report: {md} and {page}")
