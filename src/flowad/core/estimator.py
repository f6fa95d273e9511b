"""The estimator contract every tabular flowad detector follows (scikit-learn's, exactly).

- ``fit(X, y=None)`` validates its input, fits the model and calibrates the threshold, sets only
  attributes ending in ``_`` and returns ``self``. ``X`` is an array ``(N, D)`` or a
  :class:`pandas.DataFrame`; a DataFrame's columns are chosen and encoded by a
  :class:`~flowad.core.table_schema.TableSchema` that the model keeps (``schema_``), so that any
  table holding the same columns, in any order, can be scored later.
- ``score_samples(X)``: higher means more normal (for a flow: the log-likelihood in nats).
- ``decision_function(X) = score_samples(X) - offset_``; ``predict(X)`` gives +1 (normal) or -1
  (anomaly), scikit-learn's convention.
- ``p_values(X)``: conformal p-values (:mod:`flowad.core.calibration`); a row is an anomaly when
  its p-value is at most ``contamination``, which is exactly ``predict(X) == -1``.
- ``score_table(X)``: a table to join back to the input: the id columns (or ``row``), ``score``,
  ``p_value`` and ``is_anomaly`` (1 = anomaly, 0 = normal: the convention of input labels, the
  opposite of ``predict``'s sign).

A subclass implements ``_fit_model(X, labels, callback)`` (fit on a float64 matrix, no threshold)
and ``_model_scores(X)`` (scores ``(N,)``, higher = more normal); the base class does the rest:
input checks, the table schema, calibration by cross-fitting or a held-out split, the finite-score
guard, p-values and model-file state.

Example:
    >>> import numpy as np
    >>> from flowad import IsolationForestDetector
    >>> X = np.random.default_rng(0).normal(size=(500, 3))
    >>> detector = IsolationForestDetector(random_state=0).fit(X)
    >>> p = detector.p_values(X[:4])
    >>> bool(((p <= 0.01) == (detector.predict(X[:4]) == -1)).all())
    True
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OutlierMixin, clone
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from flowad.core.calibration import (
    CALIBRATIONS,
    N_FOLDS,
    Calibration,
    calibration_folds,
    resolve_calibration,
    split_calibration_rows,
)
from flowad.core.table_schema import TableSchema, infer_schema
from flowad.core.threads import torch_threads

__all__ = [
    "AUTO_CONTAMINATION",
    "BaseDetector",
    "contamination_value",
    "finite_scores",
    "prefixed",
    "unprefixed",
]

logger = logging.getLogger(__name__)

#: The share of new normal rows flagged when ``contamination="auto"``.
AUTO_CONTAMINATION = 0.01
_F64 = np.finfo(np.float64)

#: Called with ``(index, total, what)`` before each model fit of ``fit`` (cross-fitting makes several).
StageCallback = Callable[[int, int, str], None]


def contamination_value(contamination: float | str) -> float:
    """The numeric share behind a ``contamination`` parameter (``"auto"`` or a float in (0, 0.5])."""
    if isinstance(contamination, str):
        if contamination != "auto":
            raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
        return AUTO_CONTAMINATION
    value = float(contamination)
    if not 0.0 < value <= 0.5:
        raise ValueError(f"contamination must be 'auto' or a float in (0, 0.5], got {contamination!r}")
    return value


def finite_scores(values) -> np.ndarray:
    """Scores as float64 with NaN and -inf (e.g. densities too small for float64) set to the lowest
    finite float and +inf to the highest, so that no score is ever NaN and the rows no model can
    score are the least normal of all."""
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=_F64.min, neginf=_F64.min, posinf=_F64.max)


def prefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``{"a": x}`` -> ``{"<prefix>.a": x}`` (to keep groups of arrays apart in a model file)."""
    return {f"{prefix}.{k}": np.asarray(v) for k, v in arrays.items()}


def unprefixed(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Inverse of :func:`prefixed`: the arrays under ``prefix``, with the prefix removed."""
    head = prefix + "."
    return {k[len(head):]: v for k, v in arrays.items() if k.startswith(head)}


class BaseDetector(OutlierMixin, BaseEstimator):
    """Input checks, table schema, calibration, thresholds and p-values for tabular detectors.

    Subclass parameters must include ``contamination`` and ``calibration``.

    Attributes:
        offset_: Threshold on ``score_samples``: rows below it are predicted anomalies.
        calibration_: The :class:`~flowad.core.calibration.Calibration` behind ``offset_`` and
            the p-values.
        schema_: The :class:`~flowad.core.table_schema.TableSchema` of a model fitted on a
            DataFrame, else ``None``.
        n_features_in_: Number of feature columns. feature_names_in_: Their names (DataFrames).
    """

    _parameter_constraints: dict = {
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "calibration": [StrOptions(set(CALIBRATIONS))],
    }

    #: Fewest training rows ``fit`` accepts.
    _min_rows = 2
    #: Folds of cross-fitting: more folds, fold models nearer the final model, more fits.
    _calibration_folds = N_FOLDS

    # ------------------------------------------------------------------ hooks
    def _fit_model(self, X: np.ndarray, labels: np.ndarray, callback=None) -> None:  # pragma: no cover
        """Fit the model (not the threshold) on rows ``X`` ``(N, D)`` with 0/1 ``labels`` ``(N,)``."""
        raise NotImplementedError

    def _model_scores(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover
        """Scores ``(N,)`` of validated rows ``X`` ``(N, D)``; higher = more normal."""
        raise NotImplementedError

    def _check_fit_params(self) -> None:
        """Raise ``ValueError`` for parameter combinations ``fit`` cannot honour (before any work)."""

    def _uses_labels(self) -> bool:
        """Whether ``fit`` reads ``y`` (1 = a known negative row); one-class detectors ignore it."""
        return False

    def _labels_for_fit(self, y, n: int) -> np.ndarray:
        """``y`` as 0/1 labels ``(n,)`` for a detector that uses them."""
        raise NotImplementedError  # pragma: no cover

    def _analytic_threshold(self) -> bool:
        """Whether ``offset_`` and the p-values come from a formula instead of calibration scores."""
        return False

    def _analytic_p_values(self, scores: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _check_threshold_applies(self) -> None:
        """Raise ``ValueError`` where the scores no longer are those the threshold was set on."""

    def _threads(self) -> int | None:
        """PyTorch intra-op threads for fit and scoring (``None``: the caller's setting); torch models
        answer with :func:`flowad.core.threads.resolve_threads`."""
        return None

    def _calibration_random_state(self):
        """The seed of the calibration split; detectors without ``random_state`` split alike every time."""
        return getattr(self, "random_state", 0)

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X,
        y=None,
        *,
        columns: str | Sequence[str] | None = None,
        drop: str | Sequence[str] | None = None,
        id_columns: str | Sequence[str] | None = None,
        label_column: str | None = None,
        missing: str = "error",
        callback=None,
        stage: StageCallback | None = None,
    ):
        """Fit the detector and calibrate its threshold on normal rows it was not fitted to.

        Args:
            X: Training rows: an array ``(N, D)`` of finite numbers, or a DataFrame (then the
                keyword arguments below choose and encode its columns, see
                :func:`~flowad.core.table_schema.infer_schema`).
            y: Ignored by one-class detectors (scikit-learn's convention); detectors trained with
                known negatives read 1 = negative, 0 = normal. With a DataFrame and no ``y``, the
                label column gives it.
            columns: DataFrames only: the feature columns (default: all not named below).
            drop: DataFrames only: columns that are not features.
            id_columns: DataFrames only: columns identifying a row (kept for :meth:`score_table`).
            label_column: DataFrames only: the 0/1 label column (1 = anomaly); found by name when
                not given.
            missing: DataFrames only: ``"error"`` or ``"impute"`` (median or most frequent value,
                plus a missing-indicator column per feature).
            callback: Torch detectors: called after each training epoch with
                ``(epoch, train_loss, validation_loss)``.
            stage: Called with ``(index, total, what)`` before each model fit (cross-fitting
                fits several: one per fold, then the final one).

        Returns:
            ``self``.
        """
        self._validate_params()
        with torch_threads(self._threads()):
            return self._fit_and_calibrate(X, y, dict(columns=columns, drop=drop, id_columns=id_columns,
                                                      label_column=label_column, missing=missing), callback, stage)

    def _fit_and_calibrate(self, X, y, roles: dict, callback, stage: StageCallback | None):
        contamination = contamination_value(self.contamination)
        self._check_fit_params()
        X, y = self._fit_input(X, y, roles)
        labels = self._labels_for_fit(y, len(X)) if self._uses_labels() else np.zeros(len(X), np.int64)
        stage = stage or (lambda index, total, what: None)
        if self._analytic_threshold():
            stage(0, 1, "fit")
            self._fit_model(X, labels, callback)
            self.calibration_ = None
            self.offset_ = self._analytic_offset(contamination)
            return self

        rng = np.random.default_rng(_agreed(self._calibration_random_state()))
        method = resolve_calibration(self.calibration, int((labels == 0).sum()))
        if method == "cross":
            folds = calibration_folds(labels, rng, self._calibration_folds)
            scores = np.full(len(X), np.nan)
            member_seeds = rng.integers(2**31 - 1, size=len(folds))
            for j, (fit_rows, calibration_rows) in enumerate(folds):
                stage(j, len(folds) + 1, f"calibration fit {j + 1}/{len(folds)}")
                member = clone(self)
                if getattr(self, "random_state", None) is not None:
                    member.set_params(random_state=int(member_seeds[j]))
                with _calibration_context(f"calibration='cross' fits {len(folds)} copies, each on "
                                          f"{len(fit_rows)} of the {len(X)} rows"):
                    member._fit_model(X[fit_rows], labels[fit_rows], callback)
                scores[calibration_rows] = member._model_scores(X[calibration_rows])
            stage(len(folds), len(folds) + 1, "final fit")
            self._fit_model(X, labels, callback)
            calibration_scores = scores[labels == 0]
        else:
            fit_rows, calibration_rows = split_calibration_rows(labels, rng)
            stage(0, 1, "fit")
            with _calibration_context(f"calibration='split' fits on {len(fit_rows)} of the {len(X)} rows and "
                                      f"calibrates on the rest"):
                self._fit_model(X[fit_rows], labels[fit_rows], callback)
            calibration_scores = self._model_scores(X[calibration_rows])
        self.calibration_ = Calibration.from_scores(finite_scores(calibration_scores), method)
        self.offset_ = self.calibration_.offset(contamination)
        return self

    def _analytic_offset(self, contamination: float) -> float:  # pragma: no cover
        raise NotImplementedError

    def _fit_uncalibrated(self, X, y=None, callback=None):
        """Fit the model on every row of ``X`` with no threshold (``offset_`` is NaN), for a caller
        that calibrates the scores itself (the window detector calibrates on held-out *time*)."""
        self._validate_params()
        self._check_fit_params()
        X, y = self._fit_input(X, y, {})
        labels = self._labels_for_fit(y, len(X)) if self._uses_labels() else np.zeros(len(X), np.int64)
        with torch_threads(self._threads()):
            self._fit_model(X, labels, callback)
        self.calibration_ = None
        self.offset_ = float("nan")
        return self

    def _fit_input(self, X, y, roles: dict) -> tuple[np.ndarray, np.ndarray | None]:
        """Validate training input; a DataFrame goes through a new table schema."""
        if isinstance(X, pd.DataFrame):
            schema, notes = infer_schema(X, **roles)
            for note in notes:
                logger.warning(note)
            matrix = _finite_matrix(schema.encode(X), schema.encoded_names)
            if len(matrix) < self._min_rows:
                raise ValueError(f"X must have at least {self._min_rows} rows, got {len(matrix)}")
            if y is None and schema.label_column is not None:
                labels = schema.labels(X)
                if self._uses_labels():
                    y = labels
                elif labels.any():
                    warnings.warn(f"{int(labels.sum())} training row(s) are labelled 1 in {schema.label_column!r} and "
                                  f"are fitted as normal rows; pass only the rows labelled 0 to leave them out",
                                  UserWarning, stacklevel=3)
            self.schema_ = schema
            self.feature_names_in_ = np.asarray(schema.feature_names, dtype=object)
            self.n_features_in_ = len(schema.feature_names)
            return matrix, y
        named = {k: v for k, v in roles.items() if v not in (None, "error")}
        if named:
            raise TypeError(f"{', '.join(named)} choose columns of a table; pass X as a pandas DataFrame")
        self.schema_ = None
        return validate_data(self, X, dtype=np.float64, ensure_min_samples=self._min_rows, reset=True), y

    # ----------------------------------------------------------------- scoring
    def _score_input(self, X) -> np.ndarray:
        """Validate rows to score against the fitted model: float64 ``(N, D)``."""
        check_is_fitted(self, "offset_")
        schema: TableSchema | None = getattr(self, "schema_", None)
        if schema is not None and isinstance(X, pd.DataFrame):
            return _finite_matrix(schema.encode(X), schema.encoded_names)
        if schema is not None and not schema.is_numeric:
            raise TypeError(f"this model was fitted on a table with categorical or imputed columns; pass a pandas "
                            f"DataFrame with its columns {schema.feature_names[:8]}, not {type(X).__name__}")
        return validate_data(self, X, dtype=np.float64, reset=False)

    def score_samples(self, X) -> np.ndarray:
        """Normality score per row, shape ``(N,)``; higher means more normal; never NaN.

        Args:
            X: Rows ``(N, D)``, or a DataFrame with the model's feature columns.
        """
        with torch_threads(self._threads()):
            return finite_scores(self._model_scores(self._score_input(X)))

    def decision_function(self, X) -> np.ndarray:
        """``score_samples(X) - offset_``, shape ``(N,)``: negative for predicted anomalies."""
        self._check_threshold_applies()
        return self.score_samples(X) - self.offset_

    def predict(self, X) -> np.ndarray:
        """+1 for rows predicted normal, -1 for predicted anomalies (scikit-learn's convention);
        shape ``(N,)``. :meth:`score_table` writes the same decision as ``is_anomaly`` = 1."""
        return np.where(self.decision_function(X) < 0, -1, 1)

    def p_values(self, X) -> np.ndarray:
        """Conformal p-value of each row, shape ``(N,)`` (:mod:`flowad.core.calibration`): the
        share of calibration rows at most as normal as it; ``p_value <= contamination`` is a
        predicted anomaly."""
        return self.p_values_of_scores(self.score_samples(X))

    def p_values_of_scores(self, scores: np.ndarray) -> np.ndarray:
        """p-values ``(N,)`` of scores ``(N,)`` that :meth:`score_samples` returned."""
        check_is_fitted(self, "offset_")
        self._check_threshold_applies()
        if self._analytic_threshold():
            return self._analytic_p_values(np.asarray(scores, dtype=np.float64))
        if getattr(self, "calibration_", None) is None:
            raise ValueError(f"this {type(self).__name__} has no calibration scores (a model file from before "
                             f"flowad 0.2); refit it to get p-values")
        return self.calibration_.p_values(scores)

    def score_table(self, X, *, id_columns: str | Sequence[str] | None = None) -> pd.DataFrame:
        """Scores as a table that joins back to ``X`` row by row.

        Args:
            X: Rows ``(N, D)``, or a DataFrame with the model's feature columns.
            id_columns: Columns of ``X`` to copy into the result (default: the model's id columns
                when ``X`` has them); without any, a ``row`` column numbers the rows from 0.

        Returns:
            Columns: the id columns (or ``row``), ``score`` (higher = more normal), ``p_value`` and
            ``is_anomaly`` (1 = anomaly, 0 = normal, at ``contamination``).
        """
        scores = self.score_samples(X)
        schema = getattr(self, "schema_", None)
        names = _id_columns(X, id_columns, schema)
        if names:
            table = X[names].reset_index(drop=True).copy()
        else:
            table = pd.DataFrame({"row": np.arange(len(scores), dtype=np.int64)})
        table["score"] = scores
        table["p_value"] = self.p_values_of_scores(scores)
        table["is_anomaly"] = (scores < self.offset_).astype(np.int8)
        return table

    # -------------------------------------------------------------- model files
    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Fitted state for :func:`flowad.io.save`: JSON-able values and named arrays."""
        state = {"offset_": float(self.offset_), "n_features_in_": int(self.n_features_in_)}
        arrays: dict[str, np.ndarray] = {}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = [str(name) for name in self.feature_names_in_]
        schema = getattr(self, "schema_", None)
        state["schema_"] = None if schema is None else schema.to_json()
        calibration = getattr(self, "calibration_", None)
        if calibration is not None:
            state["calibration_method_"] = calibration.method
            arrays.update(prefixed("calibration", calibration.to_arrays()))
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`_save_state` returned, on a fresh instance with the same parameters."""
        self.offset_ = float("nan") if state["offset_"] is None else float(state["offset_"])
        self.n_features_in_ = int(state["n_features_in_"])
        if state.get("feature_names_in_") is not None:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        schema = state.get("schema_")
        self.schema_ = None if schema is None else TableSchema.from_json(schema)
        calibration = unprefixed("calibration", arrays)
        method = state.get("calibration_method_")
        self.calibration_ = Calibration.from_arrays(calibration, method) if calibration and method else None

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


@contextlib.contextmanager
def _calibration_context(what: str) -> Iterator[None]:
    """A ``ValueError`` raised inside the block says that it came from a fit on part of the rows
    (``what``), so that a row count in its message that differs from the caller's makes sense."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{error} (in a calibration fit: {what})") from error


def _agreed(random_state):
    """The same seed on every rank of a data-parallel group (``random_state`` itself outside one)."""
    from flowad.core.distributed import agreed_random_state

    return agreed_random_state(random_state)


def _finite_matrix(X: np.ndarray, names: list[str]) -> np.ndarray:
    """``X`` unchanged when every value is finite; otherwise a ``ValueError`` naming the columns."""
    bad = ~np.isfinite(X)
    if bad.any():
        columns = [f"{names[j]!r} ({int(bad[:, j].sum())})" for j in np.flatnonzero(bad.any(axis=0))]
        raise ValueError(f"values must be finite; infinite values in column(s) {', '.join(columns[:8])}")
    return X


def _id_columns(X, id_columns, schema: TableSchema | None) -> list[str]:
    if not isinstance(X, pd.DataFrame):
        if id_columns:
            raise TypeError("id_columns needs X as a pandas DataFrame")
        return []
    from flowad.core.table_schema import as_name_list

    if id_columns is not None:
        names = as_name_list(id_columns, "id_columns")
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"id_columns: no column {missing} in the data")
        return names
    if schema is None:
        return []
    return [n for n in schema.id_columns if n in X.columns]
