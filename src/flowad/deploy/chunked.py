"""Out-of-core scoring of Parquet files in plain Python: memory flat in the number of rows.

Each input file is read in record batches of ``chunk_rows`` rows (pyarrow), scored, and appended to
one output Parquet file per input (``part.00000.parquet``, ...; columns ``score`` (float64, higher =
more normal) and ``label`` (+1 normal, -1 anomaly, at the model's ``offset_``)), in input order.
The same partition function serves the Dask engine (:mod:`flowad.deploy.dask_scoring`).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["PART_NAME", "expand_parquet_inputs", "feature_columns", "read_scores", "score_frame", "score_parquet"]

logger = logging.getLogger(__name__)

#: Output file name of partition ``i``; zero-padded, so names sort like partitions.
PART_NAME = "part.{:05d}.parquet"
SCORE_SCHEMA = pa.schema([("score", pa.float64()), ("label", pa.int8())])


def expand_parquet_inputs(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Parquet files named by ``inputs``: files, directories (their ``*.parquet``, sorted) or glob
    patterns (sorted). Raises ``FileNotFoundError`` when nothing matches and ``ValueError`` for files
    that are not Parquet."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("*.parquet")) + sorted(path.glob("*.pq"))
        elif path.is_file():
            found = [path]
        else:
            found = [Path(p) for p in sorted(glob.glob(str(item)))]
        if not found:
            raise FileNotFoundError(f"no Parquet data at {str(item)!r}")
        files += found
    if not files:
        raise ValueError("data must name at least one Parquet file")
    bad = [p.name for p in files if p.suffix.lower() not in (".parquet", ".pq")]
    if bad:
        raise ValueError(f"the local and dask engines read Parquet files only, got {bad[:3]}")
    return files


def feature_columns(detector, columns: list[str], label_column: str | None = None) -> list[str]:
    """The columns to score: the model's training columns when it knows their names, else every
    column but ``label_column``; ``ValueError`` when columns are missing or their count is wrong."""
    names = getattr(detector, "feature_names_in_", None)
    if names is not None:
        missing = [str(n) for n in names if str(n) not in columns]
        if missing:
            raise ValueError(f"data lack the model's feature columns {missing[:5]} (it was fitted on {len(names)})")
        return [str(n) for n in names]
    if label_column is not None and label_column not in columns:
        raise ValueError(f"label_column {label_column!r} is not a column of the data")
    chosen = [c for c in columns if c != label_column]
    if len(chosen) != detector.n_features_in_:
        raise ValueError(f"data have {len(chosen)} feature columns, the model expects {detector.n_features_in_}")
    return chosen


def score_frame(detector, frame: pd.DataFrame) -> pd.DataFrame:
    """Score rows ``(N, D)`` of ``frame`` (exactly the feature columns): columns ``score``, ``label``."""
    X = frame if getattr(detector, "feature_names_in_", None) is not None else frame.to_numpy(np.float64)
    scores = detector.score_samples(X) if len(frame) else np.zeros(0)
    labels = np.where(scores < detector.offset_, -1, 1).astype(np.int8)
    return pd.DataFrame({"score": scores, "label": labels})


def score_parquet(
    detector,
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    label_column: str | None = None,
    chunk_rows: int = 65_536,
    on_chunk: Callable[[int], None] | None = None,
) -> list[Path]:
    """Score Parquet files chunk by chunk and write one Parquet file of scores per input file.

    Args:
        detector: A fitted tabular detector.
        inputs: Parquet files, directories or glob patterns (:func:`expand_parquet_inputs`).
        output: Directory to write ``part.00000.parquet``, ... into (created; must hold no other
            ``part.*.parquet`` files).
        label_column: Column to leave out of the features (when the model has no column names).
        chunk_rows: Rows read and scored at a time.
        on_chunk: Called with the number of rows after each chunk (progress).

    Returns:
        The files written, in input order.
    """
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    files = expand_parquet_inputs(inputs)
    out = prepare_output(output)
    written = []
    for i, path in enumerate(files):
        source = pq.ParquetFile(path)
        columns = feature_columns(detector, source.schema_arrow.names, label_column)
        target = out / PART_NAME.format(i)
        tmp = target.with_name(f".{target.name}.tmp")
        try:
            with pq.ParquetWriter(tmp, SCORE_SCHEMA) as writer:
                for batch in source.iter_batches(batch_size=int(chunk_rows), columns=columns):
                    scored = score_frame(detector, batch.to_pandas())
                    writer.write_table(pa.Table.from_pandas(scored, schema=SCORE_SCHEMA, preserve_index=False))
                    if on_chunk is not None:
                        on_chunk(len(scored))
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        written.append(target)
    logger.info("scored %d file(s) into %s", len(files), out)
    return written


def prepare_output(output: str | os.PathLike) -> Path:
    """Create the output directory; refuse a file, or a directory already holding score parts."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output {str(out)!r} is a file; the local and dask engines write a directory")
    if out.is_dir() and any(out.glob("part.*.parquet")):
        raise ValueError(f"output {str(out)!r} already holds part.*.parquet files; choose an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    return out


def read_scores(output: str | os.PathLike) -> pd.DataFrame:
    """All ``part.*.parquet`` files of a scoring run, concatenated in partition order."""
    parts = sorted(Path(output).glob("part.*.parquet"))
    if not parts:
        raise FileNotFoundError(f"no part.*.parquet files in {str(output)!r}")
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
