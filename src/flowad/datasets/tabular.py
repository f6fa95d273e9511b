"""Read tabular data files: CSV, Parquet, or NumPy ``.npz`` with arrays ``X`` (and ``y``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Table", "read_table"]

SUFFIXES = (".csv", ".parquet", ".pq", ".npz")


@dataclass
class Table:
    """Features, optional labels and column names read from one file.

    Attributes:
        X: Shape ``(N, D)``, float64.
        y: Shape ``(N,)`` int labels (1 = anomaly) or ``None``.
        feature_names: ``D`` column names.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]


def _labels(values, source: str) -> np.ndarray:
    y = np.asarray(values)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"label column {source!r} must be numeric 0/1 (1 = anomaly), got {y.dtype}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"label column {source!r} must hold only 0 (normal) and 1 (anomaly)")
    return y.astype(np.int64)


def read_table(path: str | Path, label_column: str | None = None) -> Table:
    """Read a data file.

    Args:
        path: A ``.csv``, ``.parquet`` or ``.npz`` file. An ``.npz`` holds ``X`` (N, D) and
            optionally ``y`` (N,); it is read without unpickling.
        label_column: For CSV/Parquet, the column holding labels (excluded from the features).
            For ``.npz`` the labels are the ``y`` array; a ``label_column`` other than ``"y"`` is an
            error.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: For an unknown format, missing label column or non-numeric features.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"data file must be one of {', '.join(SUFFIXES)}, got {path.name!r}")
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as arrays:
                if "X" not in arrays:
                    raise ValueError(f"{path.name}: an .npz data file must hold an array named 'X'")
                X = np.asarray(arrays["X"])
                y = np.asarray(arrays["y"]) if "y" in arrays else None
        except (OSError, EOFError) as err:
            raise ValueError(f"{path.name}: not a readable .npz file ({err})") from err
        if label_column not in (None, "y"):
            raise ValueError(f"label_column for an .npz file must be 'y', got {label_column!r}")
        if X.ndim != 2:
            raise ValueError(f"{path.name}: X must be 2-D, got shape {X.shape}")
        names = [f"x{i}" for i in range(X.shape[1])]
        return Table(_numeric(X, path.name), None if y is None else _labels(y, "y"), names)

    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except (ValueError, OSError, pd.errors.ParserError) as err:
        raise ValueError(f"{path.name}: could not read ({err})") from err
    y = None
    if label_column is not None:
        if label_column not in frame.columns:
            raise ValueError(f"label_column {label_column!r} not in {path.name} (columns: {list(frame.columns)})")
        y = _labels(frame.pop(label_column).to_numpy(), label_column)
    bad = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise ValueError(f"{path.name}: columns must be numeric; non-numeric: {bad}")
    return Table(_numeric(frame.to_numpy(), path.name), y, [str(c) for c in frame.columns])


def _numeric(X: np.ndarray, source: str) -> np.ndarray:
    if X.dtype.kind not in "biuf":
        raise ValueError(f"{source}: features must be numeric, got dtype {X.dtype}")
    return X.astype(np.float64)
