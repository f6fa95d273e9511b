"""The table a model was fitted on: which columns are features, ids and labels, and how each
feature column becomes numbers.

A :class:`TableSchema` is inferred from a training :class:`pandas.DataFrame` by
:func:`infer_schema` and saved inside the model (as JSON, never pickled). Scoring selects the
model's feature columns *by name* from any table that has them: extra columns are ignored and
column order does not matter; a missing column is an error that names it.

How columns are chosen (:func:`infer_schema`):

- ``columns`` lists the features explicitly; otherwise every column is a feature except the
  ``id_columns``, the ``label_column``, the columns in ``drop`` and an index column written by
  :meth:`pandas.DataFrame.to_csv` (named ``Unnamed: 0``, strictly increasing integers), which is
  left out with a note.
- Without ``label_column`` (and without ``columns``), one column named like a label (``label``,
  ``is_anomaly``, ``anomaly``, ``outlier``, ``y``, ``target``, ...) holding only 0 and 1 is taken
  as the label column, with a note. Labels are 1 = anomaly, 0 = normal.
- Date-time columns are never features: they must be named as ids or dropped. A text column with
  a distinct value in most rows (an identifier, free text) is refused the same way.

How feature columns become numbers (:meth:`TableSchema.encode`):

- numeric columns as they are;
- boolean columns (``True``/``False``, or the text ``true``/``false``) as 0/1;
- text and categorical columns as integer codes, ordered from the *rarest* training category (0)
  to the most frequent (``K - 1``); a category never seen in training gets the code ``-1``, one
  level beyond the rarest, so that it reads as unusual. Detectors see integer codes as discrete
  values: a flow spreads each code uniformly over its unit bin while training (dequantisation,
  :mod:`flowad.core.preprocessing`), so its likelihood is an exact density of what it sees;
- missing values: by default (``missing="error"``) an error that names each column and how many
  rows; with ``missing="impute"`` each missing value is replaced by the column's training median
  (numeric) or most frequent value (boolean, categorical), and every feature column ``c`` gains a
  0/1 indicator column ``c__missing``, so that a model can tell an imputed value from a real one.

Example:
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"id": ["a", "b", "c"], "temp": [20.5, 21.0, 19.8],
    ...                       "site": ["n", "s", "n"], "is_anomaly": [0, 0, 1]})
    >>> schema, notes = infer_schema(frame, id_columns=["id"])
    >>> schema.feature_names, schema.label_column
    (['temp', 'site'], 'is_anomaly')
    >>> schema.encode(frame).tolist()
    [[20.5, 1.0], [21.0, 0.0], [19.8, 1.0]]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

__all__ = ["LABEL_NAMES", "MISSING", "Column", "TableSchema", "as_name_list", "infer_schema"]

#: Column names (compared in lower case) taken as the label column when none is given.
LABEL_NAMES = ("label", "labels", "is_anomaly", "anomaly", "is_outlier", "outlier", "y", "target", "class")
#: What to do with missing values.
MISSING = ("error", "impute")
#: Suffix of the missing-indicator columns added with ``missing="impute"``.
INDICATOR_SUFFIX = "__missing"
_TRUE, _FALSE = {"true", "t", "yes"}, {"false", "f", "no"}
_PANDAS_INDEX = re.compile(r"^Unnamed: 0$")


@dataclass(frozen=True)
class Column:
    """One feature column and its encoding.

    Attributes:
        name: The column name.
        kind: ``"numeric"``, ``"boolean"`` or ``"categorical"``.
        categories: For categorical columns, the training categories; code ``i`` is
            ``categories[i]`` (rarest first).
        fill: The value imputed for a missing entry (``missing="impute"``): the training median,
            or the most frequent value (a boolean as 0/1, a category as its code).
    """

    name: str
    kind: str
    categories: tuple[str, ...] = ()
    fill: float = 0.0


@dataclass
class TableSchema:
    """Feature columns with their encodings, plus the id and label columns of a table.

    Attributes:
        features: The feature columns, in the order the model sees them.
        id_columns: Columns that identify a row; carried into score tables, never features.
        label_column: The column of 0/1 labels (1 = anomaly), or ``None``.
        missing: ``"error"`` or ``"impute"`` (see the module docstring).
    """

    features: list[Column]
    id_columns: list[str] = field(default_factory=list)
    label_column: str | None = None
    missing: str = "error"

    @property
    def feature_names(self) -> list[str]:
        """Names of the feature columns, in order."""
        return [c.name for c in self.features]

    @property
    def encoded_names(self) -> list[str]:
        """Names of the columns of :meth:`encode`'s output (features, then missing indicators)."""
        names = self.feature_names
        if self.missing == "impute":
            names = names + [n + INDICATOR_SUFFIX for n in names]
        return names

    @property
    def is_numeric(self) -> bool:
        """Whether a plain numeric array with the features in order can stand for a table."""
        return self.missing == "error" and all(c.kind != "categorical" for c in self.features)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The feature columns of ``frame`` as numbers, shape ``(N, len(encoded_names))``, float64.

        Args:
            frame: A table holding at least the feature columns (any order, extra columns ignored).

        Raises:
            ValueError: A feature column is missing, holds values of the wrong type, or (with
                ``missing="error"``) holds missing values.
        """
        frame = _as_frame(frame)
        missing = [n for n in self.feature_names if n not in frame.columns]
        if missing:
            raise ValueError(f"the data lack the model's feature column(s) {_names(missing)} "
                             f"(the model uses {_names(self.feature_names)})")
        _check_unique_columns(frame)
        columns, absent = [], []
        for column in self.features:
            values, nan = _encode_column(frame[column.name], column)
            absent.append(nan)
            columns.append(values)
        absent = np.stack(absent, axis=1) if absent else np.zeros((len(frame), 0), bool)
        X = np.stack(columns, axis=1) if columns else np.zeros((len(frame), 0))
        if self.missing == "error":
            _refuse_missing(self.feature_names, absent)
            return X
        fills = np.array([c.fill for c in self.features], dtype=np.float64)
        X = np.where(absent, fills, X)
        return np.hstack([X, absent.astype(np.float64)])

    def labels(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The 0/1 labels of ``frame`` (shape ``(N,)``), or ``None`` without a label column in it."""
        frame = _as_frame(frame)
        if self.label_column is None or self.label_column not in frame.columns:
            return None
        return check_labels(frame[self.label_column], self.label_column)

    def to_json(self) -> dict:
        """The schema as JSON-able values (for model files)."""
        return {"features": [asdict(c) | {"categories": list(c.categories)} for c in self.features],
                "id_columns": list(self.id_columns), "label_column": self.label_column, "missing": self.missing}

    @classmethod
    def from_json(cls, value: dict) -> TableSchema:
        """Inverse of :meth:`to_json`."""
        features = [Column(name=str(c["name"]), kind=str(c["kind"]), categories=tuple(c.get("categories", ())),
                           fill=float(c.get("fill", 0.0))) for c in value["features"]]
        return cls(features=features, id_columns=[str(n) for n in value.get("id_columns", [])],
                   label_column=value.get("label_column"), missing=str(value.get("missing", "error")))


def as_name_list(value: str | Iterable[str] | None, parameter: str) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``None`` as a list of column names."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    try:
        return [str(v) for v in value]
    except TypeError:
        raise TypeError(f"{parameter} must be a column name or a list of names, got {value!r}") from None


def check_labels(values, name: str) -> np.ndarray:
    """Labels as int64 0/1, shape ``(N,)``; ``ValueError`` naming the column otherwise."""
    series = pd.Series(values)
    if series.isna().any():
        raise ValueError(f"label column {name!r} has {int(series.isna().sum())} missing value(s); labels must be 0 "
                         f"(normal) or 1 (anomaly)")
    if series.dtype == bool:
        return series.to_numpy().astype(np.int64)
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.isna().any() or not numeric.isin((0, 1)).all():
        bad = series[numeric.isna() | ~numeric.isin((0, 1))].iloc[0]
        raise ValueError(f"label column {name!r} must hold only 0 (normal) and 1 (anomaly), found {bad!r}")
    return numeric.to_numpy().astype(np.int64)


def infer_schema(
    frame: pd.DataFrame,
    *,
    columns: str | Sequence[str] | None = None,
    drop: str | Sequence[str] | None = None,
    id_columns: str | Sequence[str] | None = None,
    label_column: str | None = None,
    missing: str = "error",
) -> tuple[TableSchema, list[str]]:
    """Choose and encode the feature columns of a training table (rules: module docstring).

    Args:
        frame: The training table, ``N`` rows.
        columns: The feature columns; ``None``: every column not otherwise named.
        drop: Columns that are not features (time stamps, free text, ...).
        id_columns: Columns identifying a row, carried into score tables.
        label_column: The 0/1 label column (1 = anomaly); ``None``: detected by name, see above.
        missing: ``"error"`` or ``"impute"``.

    Returns:
        ``(schema, notes)``: the schema, and one sentence for each choice made on the user's
        behalf (an index or label column recognised), for the caller to show.

    Raises:
        ValueError: A named column is not in ``frame``, a column is named twice, no feature is
            left, a date-time or identifier-like column would be a feature, or values are missing.
    """
    frame = _as_frame(frame)
    _check_unique_columns(frame)
    if missing not in MISSING:
        raise ValueError(f"missing must be one of {MISSING}, got {missing!r}")
    if len(frame) == 0:
        raise ValueError("the table has no rows")
    wanted = as_name_list(columns, "columns")
    dropped = as_name_list(drop, "drop")
    ids = as_name_list(id_columns, "id_columns")
    for parameter, names in (("columns", wanted), ("drop", dropped), ("id_columns", ids),
                             ("label_column", [label_column] if label_column is not None else [])):
        unknown = [n for n in names if n not in frame.columns]
        if unknown:
            raise ValueError(f"{parameter}: no column {_names(unknown)} in the data (columns: "
                             f"{_names(list(frame.columns), 12)})")
    roles = {}
    labelled = [label_column] if label_column is not None else []
    for parameter, names in (("id_columns", ids), ("drop", dropped), ("label_column", labelled)):
        for name in names:
            if name in roles and roles[name] != parameter:
                raise ValueError(f"column {name!r} is given both in {roles[name]} and in {parameter}")
            roles[name] = parameter
    clash = [n for n in wanted if n in roles]
    if clash:
        raise ValueError(f"column(s) {_names(clash)} cannot be both features (columns) and {roles[clash[0]]}")

    notes: list[str] = []
    first = str(frame.columns[0])
    if not wanted and first not in roles and _PANDAS_INDEX.match(first) and _is_row_index(frame[first]):
        dropped.append(first)
        notes.append(f"left out column {first!r}: the row index pandas writes with to_csv")
    if label_column is None and not wanted:
        candidates = [str(c) for c in frame.columns if str(c).lower() in LABEL_NAMES and str(c) not in roles
                      and _is_binary(frame[c])]
        if len(candidates) > 1:
            raise ValueError(f"several columns look like labels ({_names(candidates)}); name one with label_column "
                             f"(CLI: --label-column) and drop the others")
        if candidates:
            label_column = candidates[0]
            notes.append(f"using column {label_column!r} as the label column (1 = anomaly); name another with "
                         f"label_column (CLI: --label-column), or choose the features with columns")
    if label_column is not None:
        check_labels(frame[label_column], label_column)

    taken = set(ids) | set(dropped) | ({label_column} if label_column else set())
    names = wanted or [str(c) for c in frame.columns if str(c) not in taken]
    if not names:
        raise ValueError("no feature column is left (every column is an id, the label or dropped)")
    features = [_infer_column(frame[name], name, missing) for name in names]
    schema = TableSchema(features=features, id_columns=ids, label_column=label_column, missing=missing)
    if missing == "error":
        schema.encode(frame)  # refuses missing values with the counts
    return schema, notes


# ---------------------------------------------------------------------------------------- helpers
def _as_frame(frame) -> pd.DataFrame:
    """``frame`` with its column names as text (a DataFrame built from an array has integer names)."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"a table must be a pandas DataFrame, got {type(frame).__name__}")
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    return frame


def _names(names: Sequence, limit: int = 8) -> str:
    shown = ", ".join(repr(str(n)) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _check_unique_columns(frame: pd.DataFrame) -> None:
    counts = pd.Index(frame.columns).value_counts()
    twice = [str(n) for n, k in counts.items() if k > 1]
    if twice:
        raise ValueError(f"duplicate column name(s) {_names(twice)}; every column needs its own name")


def _is_row_index(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series) and series.is_monotonic_increasing and series.is_unique


def _is_binary(series: pd.Series) -> bool:
    if series.dtype == bool:
        return True
    if not pd.api.types.is_numeric_dtype(series) or series.isna().any():
        return False
    return bool(series.isin((0, 1)).all())


def _looks_like_datetime(series: pd.Series) -> bool:
    if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
        return True
    if pd.api.types.is_numeric_dtype(series) or series.dtype == bool:
        return False
    sample = series.dropna().astype(str).head(200)
    if sample.empty or not sample.str.contains(r"\d", regex=True).all():
        return False
    if not sample.str.contains(r"\d[-/:.]\d|\d{4}-\d\d", regex=True).all():
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def _bool_values(series: pd.Series) -> pd.Series | None:
    """``series`` as floats 0/1 (NaN where missing) when it holds only boolean values, else None."""
    if series.dtype == bool:
        return series.astype(np.float64)
    present = series.dropna()
    if present.empty:
        return None
    if present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return series.map(lambda v: np.nan if pd.isna(v) else float(bool(v)))
    if pd.api.types.is_numeric_dtype(series):
        return None
    text = present.astype(str).str.strip().str.lower()
    if text.isin(_TRUE | _FALSE).all():
        lowered = series.astype("string").str.strip().str.lower()
        return lowered.map(lambda v: np.nan if pd.isna(v) else float(v in _TRUE)).astype(np.float64)
    return None


def _infer_column(series: pd.Series, name: str, missing: str) -> Column:
    if series.isna().all():
        raise ValueError(f"column {name!r} has no values (every row is missing); drop it")
    if _looks_like_datetime(series):
        raise ValueError(f"column {name!r} holds dates or times, which are never used as features; name it with "
                         f"id_columns (CLI: --id-column) or drop it (--drop), or add numeric features derived from it")
    boolean = _bool_values(series)
    if boolean is not None:
        present = boolean.dropna()
        return Column(name, "boolean", fill=float(present.mean() >= 0.5))
    if pd.api.types.is_numeric_dtype(series):
        return Column(name, "numeric", fill=float(np.nanmedian(series.to_numpy(np.float64))))
    text = series.dropna().astype(str)
    counts = text.value_counts()
    if len(counts) > 20 and len(counts) > 0.5 * len(text):
        raise ValueError(f"column {name!r} is text with {len(counts)} distinct values in {len(text)} rows (an "
                         f"identifier or free text?); name it with id_columns (CLI: --id-column) or drop it (--drop)")
    order = sorted(counts.items(), key=lambda item: (item[1], item[0]))  # rarest first
    categories = tuple(str(c) for c, _ in order)
    return Column(name, "categorical", categories=categories, fill=float(len(categories) - 1))


def _encode_column(series: pd.Series, column: Column) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(N,)`` float64 (anything where missing) and the missing mask ``(N,)`` of one column."""
    nan = series.isna().to_numpy()
    if column.kind == "numeric":
        if pd.api.types.is_numeric_dtype(series) and series.dtype != bool:
            values = series.to_numpy(np.float64, na_value=np.nan)
        else:
            values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)
            bad = np.isnan(values) & ~nan
            if bad.any():
                raise ValueError(f"column {column.name!r} must be numeric like the training data, found "
                                 f"{series[bad].iloc[0]!r} in {int(bad.sum())} row(s)")
        return values, nan
    if column.kind == "boolean":
        values = _bool_values(series)
        if values is None:
            raise ValueError(f"column {column.name!r} must hold true/false values like the training data, found "
                             f"{series.dropna().iloc[0]!r}")
        return values.to_numpy(np.float64), nan
    text = series.astype("string").fillna("")
    codes = pd.Index(list(column.categories)).get_indexer(text)  # -1: a category unseen in training
    return codes.astype(np.float64), nan


def _refuse_missing(names: list[str], absent: np.ndarray) -> None:
    if not absent.any():
        return
    per_column = absent.sum(axis=0)
    parts = [f"{names[j]!r} ({_rows(int(per_column[j]))})" for j in np.flatnonzero(per_column)]
    raise ValueError(f"missing values in {_rows(int(absent.any(axis=1).sum()))}, in column(s) {', '.join(parts[:8])}; "
                     f"fill them, or pass missing='impute' (CLI: --missing impute) to impute each with a "
                     f"missing-indicator column")


def _rows(n: int) -> str:
    return f"{n} row" + ("s" if n != 1 else "")
