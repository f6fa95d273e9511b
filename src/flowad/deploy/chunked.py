"""Out-of-core scoring of Parquet files in plain Python: memory flat in the number of rows.

Each input file is read in record batches of ``chunk_rows`` rows, scored, and appended to one output
Parquet file per input (``part.00000.parquet``, ...), in input order. The columns are those of
:meth:`~flowad.core.estimator.BaseDetector.score_table`: the id columns (or ``row``, the 0-based row
number within its input file), ``score`` (float64, higher = more normal), ``p_value`` and
``is_anomaly`` (1 = anomaly). Files are read without pyarrow's pre-buffering (which holds whole
column chunks in memory) and written to a temporary file that is renamed into place when complete.
The same partition function serves the Dask engine (:mod:`flowad.deploy.dask_scoring`).
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from flowad.core.safe_files import atomic_path

__all__ = ["PART_NAME", "expand_parquet_inputs", "feature_columns", "read_scores", "score_frame", "score_parquet"]

logger = logging.getLogger(__name__)

#: Output file name of partition ``i``; zero-padded, so names sort like partitions.
PART_NAME = "part.{:05d}.parquet"
#: Bytes of a column chunk read at a time (pyarrow's buffered stream).
_READ_BUFFER = 1 << 20


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


def feature_columns(detector, columns: list[str]) -> list[str]:
    """The columns to read for scoring: the model's feature columns by name (a model fitted on an
    unnamed array: every column, whose count must match); ``ValueError`` when some are missing."""
    schema = getattr(detector, "schema_", None)
    names = schema.feature_names if schema is not None else getattr(detector, "feature_names_in_", None)
    if names is not None:
        missing = [str(n) for n in names if str(n) not in columns]
        if missing:
            raise ValueError(f"the data lack the model's feature column(s) {missing[:5]} (it uses {len(names)})")
        return [str(n) for n in names]
    if len(columns) != detector.n_features_in_:
        raise ValueError(f"data have {len(columns)} columns, the model (fitted without column names) expects "
                         f"{detector.n_features_in_}")
    return list(columns)


def id_columns_to_read(detector, columns: list[str], id_columns: Sequence[str] | None) -> list[str]:
    """The id columns copied into the scores: ``id_columns``, else the model's id columns present."""
    if id_columns:
        missing = [n for n in id_columns if n not in columns]
        if missing:
            raise ValueError(f"--id-column: no column {missing} in the data")
        return list(id_columns)
    schema = getattr(detector, "schema_", None)
    return [n for n in (schema.id_columns if schema is not None else []) if n in columns]


def score_frame(detector, frame: pd.DataFrame, ids: Sequence[str] = (), first_row: int = 0) -> pd.DataFrame:
    """Scores of the rows of ``frame`` (feature columns plus ``ids``): the id columns, or ``row``
    numbered from ``first_row``, then ``score``, ``p_value``, ``is_anomaly``."""
    names = getattr(detector, "feature_names_in_", None)
    if getattr(detector, "schema_", None) is not None:
        X = frame  # the schema selects its columns by name
    elif names is not None:
        X = frame[[str(n) for n in names]]
    else:
        X = frame.drop(columns=list(ids)).to_numpy(np.float64)
    if len(frame):
        scores = detector.score_samples(X)
        p_values = detector.p_values_of_scores(scores)
    else:
        scores, p_values = np.zeros(0), np.zeros(0)
    table = frame[list(ids)].reset_index(drop=True) if ids else pd.DataFrame(
        {"row": np.arange(first_row, first_row + len(frame), dtype=np.int64)})
    table["score"] = scores
    table["p_value"] = p_values
    table["is_anomaly"] = (scores < detector.offset_).astype(np.int8)
    return table


def score_parquet(
    detector,
    inputs: Iterable[str | os.PathLike],
    output: str | os.PathLike,
    *,
    id_columns: Sequence[str] | None = None,
    chunk_rows: int = 65_536,
    on_chunk: Callable[[int], None] | None = None,
) -> list[Path]:
    """Score Parquet files chunk by chunk and write one Parquet file of scores per input file.

    Args:
        detector: A fitted tabular detector.
        inputs: Parquet files, directories or glob patterns (:func:`expand_parquet_inputs`).
        output: Directory to write ``part.00000.parquet``, ... into (created; must hold no other
            ``part.*.parquet`` files).
        id_columns: Columns copied into the scores (default: the model's id columns present).
        chunk_rows: Rows read and scored at a time.
        on_chunk: Called with the number of rows after each chunk (progress).

    Returns:
        The files written, in input order.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    files = expand_parquet_inputs(inputs)
    out = prepare_output(output)
    written = []
    for i, path in enumerate(files):
        # no pre-buffering, and column chunks read through a 1 MiB buffer: memory does not grow with
        # the size of the file's row groups (pyarrow writes 1M-row groups by default)
        source = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
        names = source.schema_arrow.names
        ids = id_columns_to_read(detector, names, id_columns)
        columns = feature_columns(detector, [n for n in names if n not in ids] if not _named(detector) else names)
        read = list(dict.fromkeys([*columns, *ids]))
        target = out / PART_NAME.format(i)
        with atomic_path(target) as tmp:
            writer, first = None, 0
            try:
                for batch in source.iter_batches(batch_size=int(chunk_rows), columns=read, use_threads=False):
                    scored = score_frame(detector, batch.to_pandas(), ids, first)
                    first += len(scored)
                    table = pa.Table.from_pandas(scored, preserve_index=False)
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    writer.write_table(table)
                    if on_chunk is not None:
                        on_chunk(len(scored))
                if writer is None:  # an input without rows: an empty part with the columns
                    empty = score_frame(detector, pd.DataFrame(columns=read), ids, 0)
                    pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), tmp)
            finally:
                if writer is not None:
                    writer.close()
        written.append(target)
    logger.info("scored %d file(s) into %s", len(files), out)
    return written


def _named(detector) -> bool:
    return getattr(detector, "schema_", None) is not None or getattr(detector, "feature_names_in_", None) is not None


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
