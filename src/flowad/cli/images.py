"""``flowad image ...`` and ``flowad data textures``: image models on MVTec-style folders, the texture
defect set, the image benchmark.

``image score`` writes ``scores.csv`` (``file``, ``kind``, ``score``, ``p_value``, ``is_anomaly``) and
one HTML page with every image and its heatmap (:mod:`flowad.evaluation.image_report`). No command
writes over one of its inputs, and every file is written atomically."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from flowad import io
from flowad.cli.common import Quiet, command, csv_list, out, progress_bar
from flowad.cli.data import data_app
from flowad.core.estimator import contamination_value
from flowad.core.image_estimator import BaseImageDetector
from flowad.core.progress import listen
from flowad.core.safe_files import check_not_inputs
from flowad.core.table_files import write_table
from flowad.datasets import load_image_folder
from flowad.datasets.image_folder import IMAGE_SUFFIXES
from flowad.datasets.textures import TEXTURES, write_texture_sets
from flowad.evaluation.heatmaps import write_overlays
from flowad.evaluation.image_metrics import evaluate_image_detector_outputs
from flowad.evaluation.image_report import metric_rows, write_image_report
from flowad.models.registry import IMAGE_MODELS, image_model

__all__ = ["image_app"]

image_app = typer.Typer(no_args_is_help=True, help="Image anomaly detection with heatmaps.")

Size = Annotated[int | None, typer.Option(help="Resize every image to SIZE x SIZE pixels on loading.")]


@command(data_app, "textures")
def textures(
    output: Annotated[Path, typer.Argument(help="Parent folder; one MVTec-style folder per texture.")],
    names: Annotated[str, typer.Option("--textures", help="Comma-separated textures.")] = ",".join(TEXTURES),
    crop: Annotated[int, typer.Option(help="Side of the square crops in pixels (8..256).")] = 128,
    n_train: Annotated[int, typer.Option(help="Normal training crops per texture.")] = 200,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace files of the same name in existing folders.")] = False,
) -> None:
    """Write the texture defect set (scikit-image's brick, grass, gravel) in the MVTec AD layout."""
    written = write_texture_sets(output, tuple(csv_list(names) or []), overwrite=overwrite, crop=crop,
                                 n_train=n_train, random_state=seed)
    for texture, folder in written.items():
        out.print(f"{texture}: {folder}")


BACKBONE_HELP = ("Feature backbone for models that use one: efficientnet_lite0, efficientnet_lite2, torchvision:NAME, "
                 "timm:NAME or a .onnx file")


@command(image_app, "fit")
def fit(
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder; trains on train/good/.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"One of {', '.join(IMAGE_MODELS)}.")] = "fastflow",
    backbone: Annotated[str | None, typer.Option(help=BACKBONE_HELP)] = None,
    size: Size = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs.")] = None,
    smooth_sigma: Annotated[float | None, typer.Option(
        help="Gaussian blur of the anomaly maps in pixels (0: none; the model's default if not given).")] = None,
    contamination: Annotated[str, typer.Option(help="'auto' (1%) or share of normal images flagged.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Fit an image model on the normal training images of FOLDER and save it."""
    if model not in IMAGE_MODELS:
        raise ValueError(f"--model must be one of {', '.join(IMAGE_MODELS)}, got {model!r}")
    params: dict = {"random_state": seed,
                    "contamination": contamination if contamination == "auto" else float(contamination)}
    detector = image_model(model, **params)
    if epochs is not None:
        if "max_epochs" not in detector.get_params():
            raise ValueError(f"--epochs is only for models trained by gradient descent, not {model} "
                             f"(it learns in one pass)")
        detector.set_params(max_epochs=epochs)
    if backbone is not None:
        if "backbone" not in detector.get_params():
            raise ValueError(f"--backbone is only for models with a feature backbone (fastflow, patchcore), "
                             f"not {model}")
        detector.set_params(backbone=backbone)
    if smooth_sigma is not None:  # checked by the model when it fits, before anything is written
        detector.set_params(smooth_sigma=smooth_sigma)
    train = load_image_folder(folder, "train", size=size)
    normal = train.images[train.labels == 0]
    with _model_progress(quiet, f"fit {model} on {len(normal)} images"):
        detector.fit(normal)
    io.save(detector, output)
    out.print(f"saved {model} model ({len(normal)} images of {normal.shape[1]}x{normal.shape[2]}) to {output}")


@command(image_app, "score")
def score(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by 'flowad image fit'.")],
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder to score.")],
    split: Annotated[str, typer.Option(help="Which part of the folder: test or train.")] = "test",
    size: Size = None,
    output: Annotated[Path, typer.Option(
        "--output", "-o", help="Scores per image (.csv or .parquet): file (relative to FOLDER), kind, score (higher = "
                               "more normal, as in the table commands), p_value, is_anomaly (1 = anomaly, "
                               "0 = normal).")] = Path("scores.csv"),
    report: Annotated[Path | None, typer.Option(
        help="HTML page to write: every image with its heatmap, most anomalous first, the threshold, metrics "
             "when FOLDER has labels (default: report.html beside the scores).")] = None,
    no_report: Annotated[bool, typer.Option("--no-report", help="Write no HTML page.")] = False,
    heatmaps: Annotated[Path | None, typer.Option(
        help="Also write one loose PNG per image (image | heatmap | mask) into this folder; the HTML page "
             "(--report) is the main view.")] = None,
    quiet: Quiet = False,
) -> None:
    """Score every image of FOLDER: scores.csv, an HTML page of the images with their heatmaps and,
    with labels, image and pixel metrics."""
    if report is not None and no_report:
        raise ValueError("--report and --no-report exclude each other")
    if output.is_dir():
        raise ValueError(f"--output {str(output)!r} is a directory; give a file name")
    if report is None and not no_report:
        report = output.parent / "report.html"
    _check_outputs(model_dir, folder, {"--output": output, "--report": report, "--heatmaps": heatmaps})
    detector = io.load(model_dir)
    if not isinstance(detector, BaseImageDetector):
        raise ValueError(f"{model_dir} holds a {type(detector).__name__}, not an image model")
    data = load_image_folder(folder, split, size=size)
    files = _relative_files(folder, split, data.kinds, data.names)
    with _model_progress(quiet, f"score {len(data)} images"):
        scores, maps = detector.score_and_map(data.images)
    try:
        p_values = detector.p_values_of_scores(scores)
    except ValueError:  # a model file from before calibration scores were saved
        p_values = None
    anomaly = -scores
    flagged = scores < detector.offset_
    write_table(pd.DataFrame({"file": files, "kind": data.kinds, "score": scores,
                              "p_value": np.full(len(scores), np.nan) if p_values is None else p_values,
                              "is_anomaly": flagged.astype(np.int8)}), output)
    out.print(f"scored {len(scores)} images: {int(flagged.sum())} flagged as anomalous -> {output}")
    metrics = None
    if 0 < data.labels.sum() < len(data):
        metrics = evaluate_image_detector_outputs(data.labels, data.masks, anomaly, maps).as_dict()
        table = Table(title=f"metrics on {folder.resolve().name}/{split}", title_justify="left")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for label, value in metric_rows(metrics):
            table.add_row(label, value)
        out.print(table)
    if report is not None:
        params = detector.get_params()
        facts = {"model": type(detector).__name__, "backbone": params.get("backbone"),
                 "model folder": str(model_dir), "image folder": f"{folder}/{split}"}
        write_image_report(report, files=files, kinds=data.kinds, images=data.images, maps=maps, scores=anomaly,
                           p_values=p_values, threshold=-detector.offset_, metrics=metrics,
                           masks=data.masks if data.masks.any() else None,
                           title=f"{model_dir.resolve().name} on {folder.resolve().name}/{split}", model=facts,
                           contamination=contamination_value(detector.contamination), scores_file=output.name)
        out.print(f"report written to {report}")
    if heatmaps is not None:
        paths = write_overlays(heatmaps, data.images, maps, data.masks, [f"{k}_{n}" for k, n in
                                                                        zip(data.kinds, data.names, strict=True)])
        out.print(f"{len(paths)} heatmaps written to {heatmaps}/")


@contextlib.contextmanager
def _model_progress(quiet: bool, what: str) -> Iterator[None]:
    """Progress bars for the block: a spinner saying ``what`` until the model reports, then one bar per
    task it reports (``features``, ``training``, ``scoring``: :mod:`flowad.core.progress`)."""
    with progress_bar(quiet) as progress:
        waiting = progress.add_task(what, total=None, status="")
        tasks = {}

        def listener(task: str, done: int, total: int | None) -> None:
            if task not in tasks:
                progress.update(waiting, visible=False)
                tasks[task] = progress.add_task(f"{what}: {task}", total=total, status="")
            progress.update(tasks[task], completed=done, total=total)

        if quiet:
            yield
        else:
            with listen(listener):
                yield


def _check_outputs(model_dir: Path, folder: Path, outputs: dict[str, Path | None]) -> None:
    """Refuse outputs that are folders (except --heatmaps), repeat each other, or would write over an input:
    the model's files, or anything inside the image folder's train/, test/ and ground_truth/."""
    model_files = [model_dir, model_dir / io.CONFIG_FILE, model_dir / io.WEIGHTS_FILE]
    read = [(folder / part).resolve() for part in ("train", "test", "ground_truth")]
    given = {option: path for option, path in outputs.items() if path is not None}
    for option, path in given.items():
        if option != "--heatmaps" and path.is_dir():
            raise ValueError(f"{option} {str(path)!r} is a directory; give a file name")
        check_not_inputs(path, [*model_files, folder], option)
        resolved = path.resolve()
        if any(resolved == part or part in resolved.parents for part in read):
            raise ValueError(f"{option} {str(path)!r} lies inside the image folder {str(folder)!r}, an input; "
                             f"write it elsewhere (flowad never writes into its inputs)")
    if len({p.resolve() for p in given.values()}) < len(given):
        raise ValueError(f"{', '.join(given)} must name different paths")


def _relative_files(folder: Path, split: str, kinds: list[str], names: list[str]) -> list[str]:
    """``split/kind/file`` of each image, in the order :func:`load_image_folder` read them."""
    files = [f"{split}/{kind}/{path.name}" for kind in dict.fromkeys(kinds)
             for path in sorted((folder / split / kind).iterdir())
             if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES]
    if [(file.split("/")[1], Path(file).stem) for file in files] != list(zip(kinds, names, strict=True)):
        raise ValueError(f"the files under {folder / split} changed while they were read; score them again")
    return files
