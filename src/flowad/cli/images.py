"""``flowad image ...`` and ``flowad data textures``: image models on MVTec-style folders, the texture
defect set, the image benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from flowad import io
from flowad.cli.common import Quiet, command, csv_list, out, progress_bar
from flowad.cli.data import data_app
from flowad.core.image_estimator import BaseImageDetector
from flowad.datasets import load_image_folder
from flowad.datasets.textures import TEXTURES, write_texture_sets
from flowad.evaluation.heatmaps import write_overlays
from flowad.evaluation.image_metrics import evaluate_image_detector_outputs
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


@command(image_app, "fit")
def fit(
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder; trains on train/good/.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Model directory to write.")],
    model: Annotated[str, typer.Option("--model", "-m", help=f"One of {', '.join(IMAGE_MODELS)}.")] = "fastflow",
    size: Size = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum training epochs.")] = None,
    contamination: Annotated[str, typer.Option(help="'auto' (1%) or share of normal images flagged.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Fit an image model on the normal training images of FOLDER and save it."""
    if model not in IMAGE_MODELS:
        raise ValueError(f"--model must be one of {', '.join(IMAGE_MODELS)}, got {model!r}")
    train = load_image_folder(folder, "train", size=size)
    normal = train.images[train.labels == 0]
    params: dict = {"random_state": seed,
                    "contamination": contamination if contamination == "auto" else float(contamination)}
    if epochs is not None:
        params["max_epochs"] = epochs
    detector = image_model(model, **params)
    with progress_bar(quiet) as progress:
        progress.add_task(f"fit {model} on {len(normal)} images", total=None, status="")
        detector.fit(normal)
    io.save(detector, output)
    out.print(f"saved {model} model ({len(normal)} images of {normal.shape[1]}x{normal.shape[2]}) to {output}")


@command(image_app, "score")
def score(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by 'flowad image fit'.")],
    folder: Annotated[Path, typer.Argument(help="MVTec-style folder to score.")],
    split: Annotated[str, typer.Option(help="Which part of the folder: test or train.")] = "test",
    size: Size = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file of per-image scores.")] = Path(
        "image_scores.csv"),
    heatmaps: Annotated[Path | None, typer.Option(help="Folder for overlay PNGs (image, heatmap, mask).")] = None,
    quiet: Quiet = False,
) -> None:
    """Score every image of FOLDER; with labels, also print image and pixel metrics."""
    detector = io.load(model_dir)
    if not isinstance(detector, BaseImageDetector):
        raise ValueError(f"{model_dir} holds a {type(detector).__name__}, not an image model")
    if output.exists() and output.is_dir():
        raise ValueError(f"--output {str(output)!r} is a directory; give a CSV file name")
    data = load_image_folder(folder, split, size=size)
    with progress_bar(quiet) as progress:
        progress.add_task(f"score {len(data)} images", total=None, status="")
        scores, maps = detector.score_and_map(data.images)
    flagged = scores < detector.offset_
    pd.DataFrame({"kind": data.kinds, "name": data.names, "score": scores,
                  "label": np.where(flagged, -1, 1)}).to_csv(output, index=False)
    out.print(f"scored {len(scores)} images: {int(flagged.sum())} flagged as anomalous -> {output}")
    if 0 < data.labels.sum() < len(data):
        metrics = evaluate_image_detector_outputs(data.labels, data.masks, -scores, maps).as_dict()
        out.print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
    if heatmaps is not None:
        paths = write_overlays(heatmaps, data.images, maps, data.masks, [f"{k}_{n}" for k, n in
                                                                        zip(data.kinds, data.names, strict=True)])
        out.print(f"{len(paths)} heatmaps written to {heatmaps}/")
