"""Commands and options for running beyond one process: ``flowad export``, and the Parquet engines
behind ``flowad score --engine local|dask`` (``flowad fit --distributed`` joins a torchrun group)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowad import io
from flowad.cli.common import Quiet, progress_bar, say
from flowad.core.extras import require
from flowad.core.safe_files import check_not_inputs
from flowad.deploy.chunked import score_parquet

__all__ = ["ENGINES", "export", "score_engine"]

#: ``memory``: read one file whole (CSV, Parquet, .npz) and write CSV or Parquet; ``local``: Parquet chunk by
#: chunk into Parquet parts; ``dask``: Parquet partitions on a Dask cluster into Parquet parts.
ENGINES = ("memory", "local", "dask")


def score_engine(engine: str, model_dir: Path, data: list[Path], output: Path, *, id_columns: list[str] | None,
                 scheduler: str | None, workers: int, chunk_rows: int, quiet: bool) -> None:
    """Run the ``local`` or ``dask`` engine of ``flowad score`` and report what was written."""
    if engine == "local":
        detector = io.load(model_dir)
        with progress_bar(quiet) as progress:
            task = progress.add_task("score", total=None, status="rows")
            parts = score_parquet(detector, data, output, id_columns=id_columns, chunk_rows=chunk_rows,
                                  on_chunk=lambda n: progress.advance(task, n))
    elif engine == "dask":
        if chunk_rows != 65_536:
            raise ValueError("--chunk-rows applies to the local engine; Dask partitions follow the Parquet files")
        require("dask.dataframe", "scale", "The dask engine")
        from flowad.deploy.dask_scoring import score_parquet_dask

        parts = score_parquet_dask(model_dir, data, output, scheduler=scheduler, n_workers=workers,
                                   id_columns=id_columns)
    else:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    say(f"scored {len(data)} input(s) with the {engine} engine -> {len(parts)} Parquet part(s) in {output}")


def export(
    model_dir: Annotated[Path, typer.Argument(help="Model directory written by 'flowad fit' or 'flowad image fit'.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="ONNX file to write.")] = Path("model.onnx"),
    image_size: Annotated[str | None, typer.Option(
        help="H,W of the images (FastFlow and PatchCore models: the graph has fixed image sizes).")] = None,
    check: Annotated[bool, typer.Option(help="Compare ONNX Runtime with flowad on random inputs.")] = True,
    quiet: Quiet = False,
) -> None:
    """Export a model's scoring graph to ONNX (flows: rows -> log-likelihood; FastFlow, PatchCore: images ->
    score, map)."""
    import numpy as np
    import pandas as pd

    require("onnx", "scale", "ONNX export")
    if check:
        require("onnxruntime", "scale", "The ONNX check")
    check_not_inputs(output, [model_dir, model_dir / io.CONFIG_FILE, model_dir / io.WEIGHTS_FILE], "--output")
    from flowad.deploy.onnx_export import export_onnx, onnx_scores

    detector = io.load(model_dir, device="cpu")
    size = None
    if image_size is not None:
        try:
            size = tuple(int(v) for v in image_size.split(","))
        except ValueError:
            size = ()
        if len(size) != 2:
            raise ValueError(f"--image-size must be H,W (two integers), got {image_size!r}")
    export_onnx(detector, output, image_size=size)
    message = f"exported {type(detector).__name__} to {output}"
    if check:
        rng = np.random.default_rng(0)
        if size is None:
            X = detector.scaler_.center + detector.scaler_.scale * rng.normal(size=(256, detector.n_features_in_))
            names = getattr(detector, "feature_names_in_", None)
            reference = detector.score_samples(X if names is None else pd.DataFrame(X, columns=list(names)))
        else:
            X = rng.random((2, detector.n_channels_, *size)).astype(np.float32)
            reference = detector.score_samples(X.transpose(0, 2, 3, 1))
        gap = float(np.abs(onnx_scores(output, X) - reference).max())
        if not gap <= 1e-5 * max(1.0, float(np.abs(reference).max())):
            raise ValueError(f"ONNX Runtime scores differ from flowad's by {gap:.3g}; the export is not usable")
        message += f" (ONNX Runtime matches flowad to {gap:.1e})"
    say(message)
