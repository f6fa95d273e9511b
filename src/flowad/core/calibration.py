"""Alarm rates with a guarantee: conformal p-values from calibration scores.

A detector's threshold is only as good as the scores it is taken from. Scores of rows a model was
fitted to are optimistic (the model has seen them), and so are scores of rows that chose its
early-stopping epoch. flowad therefore calibrates on scores of normal rows the scoring model was
neither fitted to nor stopped on, and turns them into conformal p-values (Vovk et al.,
"Algorithmic Learning in a Random World", 2005; Laxhammar and Falkman, "Inductive conformal
anomaly detection for sequential detection of anomalous sub-trajectories", Annals of Mathematics
and Artificial Intelligence 2015; Bates et al., "Testing for outliers with conformal p-values",
Annals of Statistics 2023, arXiv:2104.08279).

With ``n`` calibration scores ``s_1..s_n`` (higher = more normal), a new row with score ``s`` gets

    p = (1 + #{i : s_i <= s}) / (n + 1),

and is flagged when ``p <= c`` (``c`` = ``contamination``), which is the same as ``s`` lying below
the ``k``-th smallest calibration score, ``k = floor(c (n + 1))``; that score is the detector's
``offset_``. **Guarantee:** if the new normal rows and the calibration rows are exchangeable (drawn
from the same distribution, in no particular order), a new normal row is flagged with probability at
most ``c``, and at least ``c - 1/(n + 1)``. The share flagged in one batch of new rows still varies
around that rate, by binomial noise plus the spread of the ``k``-th calibration score, which shrinks
as ``n`` grows; hence the wish for many calibration rows.

Where the calibration scores come from (``calibration``):

- ``"split"``: a held-out part of the training rows (10%, at least 2,000 rows when there are 4,000)
  that the model never sees: split conformal prediction, and the guarantee above holds exactly.
- ``"cross"``: cross-fitting. The rows are split into 5 folds; for each fold a copy of the detector is
  fitted on the other four and scores it, so that every training row gets an out-of-fold score, and
  the detector itself is then fitted on all rows. All ``n`` rows calibrate, which matters on small
  tables (with 120 held-out rows at ``c = 0.01``, the threshold is the single lowest score). The
  scoring model saw somewhat more rows than the fold models, so the guarantee is approximate (as for
  cross-validation+ in Barber et al., "Predictive inference with the jackknife+", Annals of
  Statistics 2021, arXiv:1905.02928); the benchmark in ``docs/results/calibration`` measures it.
- ``"auto"`` (default): ``"cross"`` up to 20,000 training rows, ``"split"`` above, where a 10%
  hold-out has thousands of rows and cross-fitting would cost five more fits.

Example:
    >>> import numpy as np
    >>> calibration = Calibration.from_scores(np.arange(99.0), "split")
    >>> calibration.offset(0.05)  # the 5th lowest of 99 scores: 5 of 100 p-values are <= 0.05
    4.0
    >>> calibration.p_values(np.array([-1.0, 4.0, 50.0])).round(3).tolist()
    [0.01, 0.06, 0.52]
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from flowad.core.splits import HOLDOUT_FRACTION

__all__ = [
    "CALIBRATIONS",
    "CROSS_FIT_MAX_ROWS",
    "N_FOLDS",
    "Calibration",
    "calibration_folds",
    "resolve_calibration",
    "split_calibration_rows",
]

logger = logging.getLogger(__name__)

#: Values of a detector's ``calibration`` parameter.
CALIBRATIONS = ("auto", "cross", "split")
#: ``calibration="auto"`` cross-fits up to this many training rows.
CROSS_FIT_MAX_ROWS = 20_000
#: Folds of cross-fitting.
N_FOLDS = 5
#: Share of the rows held out by ``calibration="split"``, and the fewest held out (half the rows at most).
SPLIT_FRACTION, SPLIT_MIN_ROWS = HOLDOUT_FRACTION, 2_000
_LOWEST = float(np.finfo(np.float64).min)


@dataclass
class Calibration:
    """Sorted calibration scores and the rule that turns a score into a p-value.

    Attributes:
        scores: Shape ``(n,)``, ascending, finite; higher = more normal.
        method: How they were obtained: ``"split"``, ``"cross"`` or ``"temporal"`` (time series).
    """

    scores: np.ndarray
    method: str

    @classmethod
    def from_scores(cls, scores: np.ndarray, method: str) -> Calibration:
        """A calibration from unsorted scores ``(n,)`` of normal rows unseen by the scoring model."""
        values = np.sort(np.asarray(scores, dtype=np.float64).ravel())
        if len(values) == 0:
            raise ValueError("calibration needs at least one score of a normal row")
        return cls(values, method)

    @property
    def n(self) -> int:
        """Number of calibration scores."""
        return len(self.scores)

    def p_values(self, scores: np.ndarray) -> np.ndarray:
        """Conformal p-values ``(N,)`` of scores ``(N,)``: small for rows less normal than most
        calibration rows; ``1 / (n + 1)`` is the smallest possible value."""
        below = np.searchsorted(self.scores, np.asarray(scores, dtype=np.float64), side="right")
        return (1.0 + below) / (self.n + 1.0)

    def offset(self, contamination: float) -> float:
        """The threshold on scores that flags exactly the rows with ``p_value <= contamination``
        (flagged: ``score < offset``). The lowest finite float when no p-value can be that small."""
        k = math.floor(contamination * (self.n + 1) + 1e-9)
        if k < 1:
            logger.warning("with %d calibration rows no p-value is below %.3g (the smallest is 1/%d): no row will "
                           "be flagged; use more training rows or a larger contamination",
                           self.n, contamination, self.n + 1)
            return _LOWEST
        return float(self.scores[k - 1])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The scores as named arrays (for model files); the method goes with the state."""
        return {"scores": self.scores}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], method: str) -> Calibration:
        """Inverse of :meth:`to_arrays`."""
        return cls(np.asarray(arrays["scores"], dtype=np.float64), method)


def resolve_calibration(method: str, n_rows: int) -> str:
    """The calibration used for ``n_rows`` training rows: ``"cross"`` or ``"split"``."""
    if method not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, got {method!r}")
    if method == "auto":
        return "cross" if n_rows <= CROSS_FIT_MAX_ROWS else "split"
    return method


def split_calibration_rows(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Rows to fit on and normal rows to calibrate on, for ``calibration="split"``.

    Args:
        labels: Shape ``(N,)``, 0 = normal; only normal rows are held out.
        rng: Source of the choice.

    Returns:
        ``(fit_rows, calibration_rows)``, sorted indices.

    Raises:
        ValueError: With fewer than 2 normal rows.
    """
    normal = np.flatnonzero(labels == 0)
    if len(normal) < 2:
        raise ValueError(f"calibration needs at least 2 normal rows, got {len(normal)}")
    n_cal = min(len(normal) // 2, max(SPLIT_MIN_ROWS, round(SPLIT_FRACTION * len(normal))))
    held = rng.choice(normal, n_cal, replace=False)
    keep = np.ones(len(labels), bool)
    keep[held] = False
    return np.flatnonzero(keep), np.sort(held)


def calibration_folds(labels: np.ndarray, rng: np.random.Generator,
                      n_folds: int = N_FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds for cross-fitting: ``(fit_rows, calibration_rows)`` per fold.

    Each label is spread evenly over the folds (stratified), so that every fold model sees normal
    rows (and negatives, where there are any); the calibration rows of a fold are its normal rows,
    and together the folds calibrate on every normal row exactly once.

    Args:
        labels: Shape ``(N,)``, 0 = normal, 1 = a labelled negative.
        rng: Source of the assignment.
        n_folds: Number of folds (fewer when there are fewer normal rows).

    Raises:
        ValueError: With fewer than 4 normal rows (each fold model needs at least 2).
    """
    normal = np.flatnonzero(labels == 0)
    if len(normal) < 4:
        raise ValueError(f"cross-fitting needs at least 4 normal rows, got {len(normal)}")
    k = max(2, min(n_folds, len(normal) // 2))
    fold = np.empty(len(labels), np.int64)
    for value in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == value))
        fold[rows] = np.arange(len(rows)) % k
    return [(np.flatnonzero(fold != j), np.flatnonzero((fold == j) & (labels == 0))) for j in range(k)]
