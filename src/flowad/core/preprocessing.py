"""Tabular preprocessing learned on training data: robust standardisation, tail compression and
dequantisation.

A flow's density is only meaningful on continuous data: a column with zero spread or with many
tied values lets a flow put unbounded density on a point, and training ends in NaN. This module
turns a training matrix into what a flow can model:

- each column is centred on its median and divided by a robust spread (IQR / 1.349, which is the
  standard deviation for Gaussian data; the standard deviation where the IQR is zero);
- columns with no spread at all are *constant*: they are set aside (never divided by zero) and
  a deviation from the constant is scored by a unit Gaussian in the column's own units;
- *discrete* columns (integer-valued, or with at most half as many distinct values as rows) are
  dequantised while training: each value becomes a uniform draw over its bin, ``[v - 1/2, v + 1/2]``
  for integers and the half-gaps to the neighbouring distinct values otherwise (Uria et al., "RNADE:
  The real-valued neural autoregressive density-estimator", arXiv:1306.0186, section on
  dequantisation; Theis et al., "A note on the evaluation of generative models", arXiv:1511.01844);
- optionally (``tail_bound=b``), standardised values beyond ``+-b`` are compressed doubly
  logarithmically, ``g(s) = sign(s) b (1 + log(1 + log(|s| / b)))``: the identity inside
  ``[-b, b]``, continuous with slope 1 at ``+-b``, strictly increasing, and slow: ``1e300`` spreads
  map to ``7.5 b``. It is an exact change of variables whose log-derivative
  (``log b - log|s| - log(1 + log(|s| / b))`` in the tails) enters the log-density. A column whose
  few large values lie thousands of robust spreads out (a zero-inflated count: ADBench's ALOI
  reaches 26,851) otherwise reaches a flow's networks at that scale: each affine layer may scale
  by up to 1e3, and in float32 the first optimisation steps overflow. A single logarithm was not
  enough there (ALOI's values still reached 650, and in two of its six ensemble runs a flow still
  never trained).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["TabularScaler"]

_GAUSS_IQR = 1.3489795003921634  # IQR of a standard normal


@dataclass
class TabularScaler:
    """Per-column affine standardisation plus dequantisation bins.

    Attributes:
        center: Shape ``(D,)``, the value subtracted from each column.
        scale: Shape ``(D,)``, positive; each varying column is divided by it (1 for constant ones).
        varying: Shape ``(D,)`` bool; False for constant columns, which the model never sees.
        discrete: Shape ``(D,)`` bool; True for columns dequantised during training.
        integer: Shape ``(D,)`` bool; True for integer-valued discrete columns (unit-wide bins).
        levels: Sorted distinct training values of every discrete, non-integer column, concatenated.
        level_counts: Shape ``(D,)``, how many entries of ``levels`` belong to each column.
        tail_bound: Standardised magnitude beyond which values are compressed (``inf``: never).
    """

    center: np.ndarray
    scale: np.ndarray
    varying: np.ndarray
    discrete: np.ndarray
    integer: np.ndarray
    levels: np.ndarray
    level_counts: np.ndarray
    tail_bound: float = math.inf

    @classmethod
    def fit(cls, X: np.ndarray, dequantize: bool = True, tail_bound: float | None = None) -> TabularScaler:
        """Learn the statistics of a training matrix.

        Args:
            X: Shape ``(N, D)``, finite float64.
            dequantize: Whether to detect discrete columns at all.
            tail_bound: Compress standardised values beyond this magnitude (> 0); None: never.
        """
        if tail_bound is not None and not tail_bound > 0:
            raise ValueError(f"tail_bound must be > 0 or None, got {tail_bound!r}")
        n, d = X.shape
        center = np.median(X, axis=0)
        q75, q25 = np.percentile(X, [75, 25], axis=0)
        scale = (q75 - q25) / _GAUSS_IQR
        with np.errstate(over="ignore", invalid="ignore"):  # a value near 1e300 overflows the variance
            std = X.std(axis=0)
        std = np.where(np.isfinite(std), std, 1.0)
        scale = np.where(scale > 0, scale, std)
        tiny = 1e-12 * np.maximum(1.0, np.abs(center))
        varying = scale > tiny
        scale = np.where(varying, scale, 1.0)

        discrete = np.zeros(d, dtype=bool)
        integer = np.zeros(d, dtype=bool)
        levels: list[np.ndarray] = []
        counts = np.zeros(d, dtype=np.int64)
        if dequantize:
            for j in np.flatnonzero(varying):
                column = X[:, j]
                if np.all(column == np.round(column)):
                    discrete[j] = integer[j] = True
                    continue
                unique = np.unique(column)
                if len(unique) <= n / 2:
                    discrete[j] = True
                    levels.append(unique)
                    counts[j] = len(unique)
        return cls(
            center=center,
            scale=scale,
            varying=varying,
            discrete=discrete,
            integer=integer,
            levels=np.concatenate(levels) if levels else np.zeros(0),
            level_counts=counts,
            tail_bound=math.inf if tail_bound is None else float(tail_bound),
        )

    @property
    def n_model_features(self) -> int:
        """Number of columns the model sees (the varying ones)."""
        return int(self.varying.sum())

    def _standardize(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.center) / self.scale)[:, self.varying]

    def _compress(self, S: np.ndarray) -> np.ndarray:
        """The tail map ``g`` applied to standardised values ``S`` (any shape)."""
        b = self.tail_bound
        if not math.isfinite(b):
            return S
        magnitude = np.abs(S)
        tail = np.sign(S) * b * (1.0 + np.log1p(np.log(np.maximum(magnitude, b) / b)))
        return np.where(magnitude > b, tail, S)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise, drop constant columns and compress tails: ``(N, D)`` -> ``(N, D_varying)``."""
        return self._compress(self._standardize(X))

    def model_input(self, X: np.ndarray) -> np.ndarray:
        """:meth:`transform`, or one zero column when every column is constant: ``(N, max(1, D_varying))``."""
        Xs = self.transform(X)
        return Xs if Xs.shape[1] else np.zeros((len(X), 1))

    @property
    def affine_log_abs_det(self) -> float:
        """``log |det|`` of the standardisation alone (the tail map adds a per-row term)."""
        return float(-np.log(self.scale[self.varying]).sum())

    def log_abs_det(self, X: np.ndarray) -> np.ndarray:
        """``log |det|`` of the Jacobian of :meth:`transform` at each row (add it to a model
        log-density), shape ``(N,)``.

        Args:
            X: Shape ``(N, D)``.
        """
        affine = self.affine_log_abs_det
        if not math.isfinite(self.tail_bound):
            return np.full(len(X), affine)
        reach = np.maximum(np.abs(self._standardize(X)), self.tail_bound) / self.tail_bound  # 1 inside the bound
        logs = np.log(reach)
        return affine - (logs + np.log1p(logs)).sum(axis=1)  # log g' = -log(reach) - log(1 + log(reach))

    def constant_log_density(self, X: np.ndarray) -> np.ndarray:
        """Unit-Gaussian log-density of the deviations in constant columns, shape ``(N,)``."""
        dev = (X - self.center)[:, ~self.varying]
        k = dev.shape[1]
        return -0.5 * (dev**2).sum(axis=1) - 0.5 * k * np.log(2 * np.pi)

    def dequantization_bins(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower edge and width of each value's bin, in model-input units (standardised, tails
        compressed: a bin is mapped through the tail map edge by edge).

        Training draws ``low + U(0, 1) * width``; continuous columns have width 0.

        Args:
            X: Shape ``(N, D)``, training rows in original units.

        Returns:
            ``(low, width)``, each of shape ``(N, D_varying)``.
        """
        low = X.astype(np.float64).copy()
        width = np.zeros_like(low)
        integer = self.integer
        low[:, integer] -= 0.5
        width[:, integer] = 1.0
        offsets = np.concatenate([[0], np.cumsum(self.level_counts)])
        for j in np.flatnonzero(self.discrete & ~integer):
            levels = self.levels[offsets[j] : offsets[j + 1]]
            gaps = np.diff(levels)
            # Each level's bin reaches halfway to its neighbours; the end bins are symmetric.
            lower_half = np.concatenate([[gaps[0]], gaps]) / 2
            upper_half = np.concatenate([gaps, [gaps[-1]]]) / 2
            idx = np.clip(np.searchsorted(levels, X[:, j]), 0, len(levels) - 1)
            low[:, j] = X[:, j] - lower_half[idx]
            width[:, j] = lower_half[idx] + upper_half[idx]
        low = ((low - self.center) / self.scale)[:, self.varying]
        width = (width / self.scale)[:, self.varying]
        high = low + width
        tails = (np.abs(low) > self.tail_bound) | (np.abs(high) > self.tail_bound)
        if tails.any():  # bins reaching into a tail: map both edges (elsewhere g is the identity)
            width = np.where(tails, self._compress(high) - self._compress(low), width)
            low = self._compress(low)
        return low, width

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The statistics as named arrays (for model files)."""
        return {
            "center": self.center,
            "scale": self.scale,
            "varying": self.varying.astype(np.uint8),
            "discrete": self.discrete.astype(np.uint8),
            "integer": self.integer.astype(np.uint8),
            "levels": self.levels,
            "level_counts": self.level_counts,
            "tail_bound": np.asarray([self.tail_bound]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TabularScaler:
        """Inverse of :meth:`to_arrays`."""
        return cls(
            center=np.asarray(arrays["center"], dtype=np.float64),
            scale=np.asarray(arrays["scale"], dtype=np.float64),
            varying=np.asarray(arrays["varying"]).astype(bool),
            discrete=np.asarray(arrays["discrete"]).astype(bool),
            integer=np.asarray(arrays["integer"]).astype(bool),
            levels=np.asarray(arrays["levels"], dtype=np.float64),
            level_counts=np.asarray(arrays["level_counts"], dtype=np.int64),
            # files written before the option have no tail map
            tail_bound=float(np.asarray(arrays.get("tail_bound", [math.inf])).reshape(-1)[0]),
        )
