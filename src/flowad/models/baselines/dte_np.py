"""DTE-NP, the non-parametric diffusion time estimator (Livernoche, Jain, Hezaveh and Ravanbakhsh,
"On Diffusion Modeling for Anomaly Detection", ICLR 2024, arXiv:2305.18593), on the flowad contract.

DTE asks how long a DDPM forward process would have to run for a row to look the way it does: a
row far from the training data needs much noise, so a late diffusion step ``t``. The
non-parametric variant needs no network. For a row ``x`` with mean squared distance ``m`` to its
``K`` nearest training rows (standardised columns), it takes the inverse-gamma posterior of the
noise variance ``sigma2`` with shape ``D/2 - 1`` and scale ``m/2`` over the schedule's variances
``sigma2_t = 1 - prod_{s<=t} (1 - beta_s)`` (``T`` steps, ``beta`` linear), normalises it over the
``T`` steps and scores the row by the step of highest posterior (the mode, as the authors' code
does; higher = more anomalous).

Up to a constant in ``t`` the log posterior is ``-(D/2) log sigma2_t - m / (2 sigma2_t)``, whose
maximum over ``sigma2`` is at ``m / D``: the score is a non-decreasing step function of ``m``, so
DTE-NP ranks rows like a K-NN detector on the mean squared distance, on a grid of ``T`` steps, and
saturates at the last step where ``m / D`` exceeds ``sigma2_{T-1}`` (about 0.78 for the default
schedule), and at step 0 for near-duplicates of training rows.

Where flowad departs from the authors' code (``diffusion/non_param_dte.py``):

- The log posterior uses the kernel above, not ``scipy.stats.invgamma.logpdf``. The two differ by a
  constant in ``t`` whenever the shape ``D/2 - 1`` is positive, so the posterior and its mode are
  the same; for ``D <= 2`` (shape <= 0) and for rows at distance 0 (scale 0) scipy returns NaN,
  while the kernel, the likelihood of ``m``, stays defined.
- ``tie_break=True`` (the default) adds ``0.5 * m / (m + D)``, in [0, 0.5), to the step, so that the
  rows sharing a step (every row past saturation, notably) are still ordered by ``m``. It never
  moves a row across a step, and the score stays a strictly increasing function of ``m``.
  ``tie_break=False`` gives the authors' integer steps.
- Distances are computed in float64, in chunks of rows (the authors': float32).

As in the authors' code, a training row scored against its own model counts its zero distance to
itself among its ``K`` nearest (the benchmark protocols never score training rows). The columns
are standardised with the training rows' mean and standard deviation (scikit-learn's
``StandardScaler``, as the authors' data loader does). The threshold and p-values are calibrated
like every flowad detector's (:mod:`flowad.core.calibration`). DTE-NP keeps its training rows,
and cannot be saved by :mod:`flowad.io`: it is a reference for benchmarks.

Example:
    >>> import numpy as np
    >>> from flowad.models.baselines.dte_np import DTENPDetector
    >>> rng = np.random.default_rng(0)
    >>> detector = DTENPDetector().fit(rng.normal(size=(500, 4)))
    >>> scores = detector.score_samples(np.array([[0.0, 0.0, 0.0, 0.0], [6.0, 6.0, 6.0, 6.0]]))
    >>> scores.shape, bool(scores[0] > scores[1])
    ((2,), True)
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval

from flowad.core.estimator import BaseDetector

__all__ = ["DTENPDetector", "diffusion_variances"]

#: Entries of a chunk's distance matrix (rows x training rows), about 32 MB of float64.
_CHUNK_ENTRIES = 1 << 22


def diffusion_variances(n_steps: int = 300, beta_start: float = 1e-4, beta_end: float = 0.01) -> np.ndarray:
    """A DDPM schedule's noise variances ``sigma2_t = 1 - prod_{s<=t} (1 - beta_s)``, shape ``(T,)``.

    Args:
        n_steps: Number of steps ``T``.
        beta_start: First ``beta`` of the linear schedule.
        beta_end: Last ``beta``.
    """
    betas = np.linspace(beta_start, beta_end, n_steps, dtype=np.float64)
    return -np.expm1(np.cumsum(np.log1p(-betas)))


class DTENPDetector(BaseDetector):
    """DTE-NP (Livernoche et al., ICLR 2024): the diffusion step of highest posterior given the mean
    squared distance to the ``n_neighbors`` nearest training rows.

    ``score_samples(X)`` returns minus the estimated step, shape ``(N,)``, in ``(-T, 0]``: higher
    means more normal.

    Args:
        n_neighbors: ``K``, the nearest training rows averaged over (the authors': 5).
        n_steps: ``T``, the steps of the diffusion schedule (the authors': 300).
        beta_start: First ``beta`` of the linear variance schedule (1e-4).
        beta_end: Last ``beta`` (0.01).
        tie_break: Add ``0.5 * m / (m + D)`` to the step so that rows on one step (above all, past
            the last step) keep the order of their distance ``m``; ``False``: integer steps, as in
            the authors' code.
        chunk_rows: Most rows whose distances are held at once (fewer for large training sets:
            at most about 4 million distances at a time).
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from: ``"auto"``, ``"cross"`` or ``"split"``
            (:mod:`flowad.core.calibration`).

    Attributes:
        scaler_: The training rows' standardisation (``StandardScaler``).
        train_: The standardised training rows, shape ``(N_train, D)``.
        variances_: The schedule's ``sigma2_t``, shape ``(T,)``.
        offset_: Threshold on ``score_samples``.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "n_steps": [Interval(Integral, 2, None, closed="left")],
        "beta_start": [Interval(Real, 0, 1, closed="neither")],
        "beta_end": [Interval(Real, 0, 1, closed="neither")],
        "tie_break": ["boolean"],
        "chunk_rows": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, *, n_neighbors: int = 5, n_steps: int = 300, beta_start: float = 1e-4,
                 beta_end: float = 0.01, tie_break: bool = True, chunk_rows: int = 1024,
                 contamination="auto", calibration="auto") -> None:
        self.n_neighbors = n_neighbors
        self.n_steps = n_steps
        self.beta_start = beta_start
        self.beta_end = beta_end
        self.tie_break = tie_break
        self.chunk_rows = chunk_rows
        self.contamination = contamination
        self.calibration = calibration

    def _check_fit_params(self) -> None:
        if not self.beta_start < self.beta_end:
            raise ValueError(f"beta_start must be below beta_end, got beta_start={self.beta_start!r} "
                             f"and beta_end={self.beta_end!r}")

    def _fit_model(self, X: np.ndarray, labels: np.ndarray, callback=None) -> None:
        if len(X) < self.n_neighbors:
            raise ValueError(f"n_neighbors={self.n_neighbors} needs at least that many training rows in each fit "
                             f"(calibration fits on 4/5 of them), got {len(X)}")
        self.scaler_ = StandardScaler().fit(X)
        self.train_ = self.scaler_.transform(X)
        self.variances_ = diffusion_variances(self.n_steps, self.beta_start, self.beta_end)

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        """Minus the estimated diffusion step per row, shape ``(N,)``; higher means more normal."""
        m = self._distances(X)
        step = self._mode(m).astype(np.float64)
        if self.tie_break:
            step += _tie_breaker(m, self.train_.shape[1])
        return -step

    # ------------------------------------------------------------ the estimator's parts
    def neighbor_distances(self, X) -> np.ndarray:
        """``m``: mean squared Euclidean distance of each row of ``X`` ``(N, D)`` to its
        ``n_neighbors`` nearest standardised training rows, shape ``(N,)``."""
        return self._distances(self._score_input(X))

    def log_posterior(self, X) -> np.ndarray:
        """Log posterior over the steps of each row of ``X`` ``(N, D)``: the inverse-gamma
        log-density (shape ``D/2 - 1``, scale ``m/2``) of each ``sigma2_t``, normalised over the
        ``T`` steps; shape ``(N, T)``. Its argmax is the step that :meth:`score_samples` negates."""
        log_kernel = _log_kernel(self.neighbor_distances(X), self.variances_, self.train_.shape[1])
        peak = log_kernel.max(axis=1, keepdims=True)
        return log_kernel - (peak + np.log(np.exp(log_kernel - peak).sum(axis=1, keepdims=True)))

    def _distances(self, X: np.ndarray) -> np.ndarray:
        """:meth:`neighbor_distances` of validated rows, in chunks of rows."""
        Z = torch.from_numpy(self.scaler_.transform(X))
        train = torch.from_numpy(self.train_)
        train_sq = (train * train).sum(dim=1)
        rows = max(1, min(int(self.chunk_rows), _CHUNK_ENTRIES // max(1, len(train))))
        out = np.empty(len(Z), dtype=np.float64)
        for start in range(0, len(Z), rows):
            z = Z[start:start + rows]
            # |z|^2 + |x|^2 - 2 z.x, clamped at 0 against rounding
            d2 = ((z * z).sum(dim=1, keepdim=True) + train_sq[None, :] - 2.0 * (z @ train.T)).clamp_(min=0.0)
            nearest = torch.topk(d2, self.n_neighbors, dim=1, largest=False).values
            out[start:start + len(z)] = nearest.mean(dim=1).numpy()
        return out

    def _mode(self, m: np.ndarray) -> np.ndarray:
        """The step of highest posterior per row, shape ``(N,)``; the last step where ``m`` is
        not finite (standardised values too large for float64)."""
        finite = np.isfinite(m)
        step = np.full(len(m), len(self.variances_) - 1, dtype=np.int64)
        if finite.any():
            step[finite] = np.argmax(_log_kernel(m[finite], self.variances_, self.train_.shape[1]), axis=1)
        return step


def _log_kernel(m: np.ndarray, variances: np.ndarray, d: int) -> np.ndarray:
    """``-(D/2) log sigma2_t - m / (2 sigma2_t)``, shape ``(N, T)``: the inverse-gamma
    log-density of shape ``D/2 - 1`` and scale ``m/2`` at each ``sigma2_t`` up to a constant per row."""
    return -0.5 * d * np.log(variances)[None, :] - 0.5 * m[:, None] / variances[None, :]


def _tie_breaker(m: np.ndarray, d: int) -> np.ndarray:
    """``0.5 * m / (m + D)`` in [0, 0.5], strictly increasing in ``m`` (0.5 for infinite ``m``)."""
    with np.errstate(invalid="ignore"):
        share = np.where(np.isfinite(m), m / (m + d), 1.0)
    return 0.5 * share
