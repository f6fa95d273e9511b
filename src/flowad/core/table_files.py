"""Reading and writing tables as users have them: CSV (any common separator), Parquet, ``.npz``.

:func:`read_table` returns a :class:`pandas.DataFrame` with the file's columns as they are; which
columns are features is decided later, by :func:`~flowad.core.table_schema.infer_schema`. It
refuses what would otherwise go wrong quietly:

- a folder, an empty file, a header without rows, duplicate column names;
- a CSV whose separator is not a comma: ``;``, tab and ``|`` are recognised from the file's first
  lines, and with ``;`` (or tab) a decimal comma (``3,14``) is read as a number;
- a file that still parses to a single column although its header holds another separator.

An ``.npz`` file holds ``X`` ``(N, D)`` (columns ``x0``, ``x1``, ...) and optionally ``y`` ``(N,)``
(column ``y``); it is read without unpickling.

:func:`write_table` writes Parquet when the path ends in ``.parquet`` (or ``.pq``) and CSV
otherwise, atomically (:mod:`flowad.core.safe_files`).

Example:
    >>> import pandas as pd, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = path.write_text("id;temp\\na;20,5\\nb;21,0\\n")
    >>> read_table(path)["temp"].tolist()
    [20.5, 21.0]
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from flowad.core.safe_files import atomic_path

__all__ = ["PARQUET_SUFFIXES", "TABLE_SUFFIXES", "read_table", "write_table"]

PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", *PARQUET_SUFFIXES, ".npz")
_SEPARATORS = ",;\t|"
_DECIMAL_COMMA = re.compile(r"^\s*-?\d+,\d+\s*$")
_SAMPLE_BYTES = 64 * 1024


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a data file into a DataFrame (rules in the module docstring).

    Args:
        path: A ``.csv`` (or ``.tsv``/``.txt``), ``.parquet``/``.pq`` or ``.npz`` file.

    Returns:
        The table, one row per record, the file's column names.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For a folder, an unknown format, an unreadable, empty or header-only file,
            duplicate column names, or a separator flowad cannot tell.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{str(path)!r} is a folder; give one data file (CSV, Parquet or .npz); to score a folder "
                         f"of Parquet files, use 'flowad score --engine local'")
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ValueError(f"data file must end in one of {', '.join(TABLE_SUFFIXES)}, got {path.name!r}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path.name} is empty")
    if suffix == ".npz":
        frame = _read_npz(path)
    elif suffix in PARQUET_SUFFIXES:
        frame = _read_parquet(path)
    else:
        frame = _read_csv(path)
    if len(frame) == 0:
        raise ValueError(f"{path.name} has a header but no rows ({len(frame.columns)} column(s))")
    return frame


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as Parquet (``.parquet``/``.pq``) or CSV (anything else), atomically."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {str(path)!r} is a folder; give a file name ending in .csv or .parquet")
    with atomic_path(path) as tmp:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)
    return path


def _read_npz(path: Path) -> pd.DataFrame:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            if "X" not in arrays:
                raise ValueError(f"{path.name}: an .npz data file must hold an array named 'X'")
            X = np.asarray(arrays["X"])
            y = np.asarray(arrays["y"]) if "y" in arrays else None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path.name}: not a readable .npz file ({err})") from err
    if X.ndim != 2:
        raise ValueError(f"{path.name}: X must be 2-D, got shape {X.shape}")
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{path.name}: X must be numeric, got dtype {X.dtype}")
    frame = pd.DataFrame(X.astype(np.float64), columns=[f"x{i}" for i in range(X.shape[1])])
    if y is not None:
        if y.shape != (len(X),):
            raise ValueError(f"{path.name}: y must have shape ({len(X)},) like X's rows, got {y.shape}")
        frame["y"] = y
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (OSError, ValueError) as err:
        raise ValueError(f"{path.name}: not a readable Parquet file ({err})") from err
    _refuse_duplicates(names, path)
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path.name}: could not read ({err})") from err


def _read_csv(path: Path) -> pd.DataFrame:
    with open(path, "rb") as handle:
        raw = handle.read(_SAMPLE_BYTES)
    try:
        sample = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        sample = raw.decode("latin-1")
    lines = [line for line in sample.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path.name} holds no text")
    separator = _separator(lines, path)
    header = next(csv.reader(io.StringIO(lines[0]), delimiter=separator))
    _refuse_duplicates([h.strip() for h in header], path)
    decimal = "." if separator == "," else _decimal(lines[1:200], separator)
    try:
        frame = pd.read_csv(path, sep=separator, decimal=decimal, encoding_errors="replace")
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path.name}: could not read ({err})") from err
    if frame.shape[1] == 1 and any(s in str(frame.columns[0]) for s in _SEPARATORS.replace(separator, "")):
        raise ValueError(f"{path.name} parses to a single column {str(frame.columns[0])[:40]!r}; its separator could "
                         f"not be told apart — use commas, semicolons or tabs consistently")
    return frame


def _separator(lines: list[str], path: Path) -> str:
    """The separator of a CSV: the one that splits the header and the next lines alike."""
    head = lines[: min(len(lines), 50)]
    try:
        return csv.Sniffer().sniff("\n".join(head), delimiters=_SEPARATORS).delimiter
    except csv.Error:
        pass
    counts = {s: [line.count(s) for line in head] for s in _SEPARATORS}
    consistent = [s for s, c in counts.items() if c[0] > 0 and len(set(c)) == 1]
    if len(consistent) == 1:
        return consistent[0]
    if not any(counts[s][0] for s in _SEPARATORS):
        return ","  # a single column
    if "," in consistent or counts[","][0] > 0:
        return ","
    raise ValueError(f"{path.name}: cannot tell its separator (tried {', '.join(map(repr, _SEPARATORS))})")


def _decimal(lines: list[str], separator: str) -> str:
    """``","`` when the cells of a non-comma-separated file are written with decimal commas."""
    cells = [cell for line in lines for cell in line.split(separator)]
    return "," if any(_DECIMAL_COMMA.match(cell) for cell in cells) else "."


def _refuse_duplicates(names: list[str], path: Path) -> None:
    seen, twice = set(), []
    for name in names:
        if name in seen and name not in twice:
            twice.append(name)
        seen.add(name)
    if twice:
        raise ValueError(f"{path.name}: duplicate column name(s) {', '.join(map(repr, twice[:8]))}; every column "
                         f"needs its own name")
