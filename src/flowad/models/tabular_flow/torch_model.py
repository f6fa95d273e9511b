"""The scoring graph of the tabular flow detectors: raw rows in, scores out, in one torch module.

``score_samples``, ``log_likelihood``, ``latent_codes`` and the ONNX export all run this module, so
they agree by construction. Every step of preprocessing is in it: robust standardisation, the
doubly logarithmic tail map and its Jacobian, the unit-Gaussian density of constant columns, the PCA
step with its Gaussian residual, the flow, and the guard that turns non-finite scores into the
lowest finite float.

Example:
    >>> import numpy as np, torch
    >>> from flowad import FlowDetector
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> detector = FlowDetector(max_epochs=3, random_state=0).fit(X)
    >>> graph = detector.scoring_
    >>> scores = graph(torch.as_tensor(X[:20], dtype=torch.float64)).detach().numpy()
    >>> bool(np.allclose(scores, detector.score_samples(X[:20]), rtol=0, atol=0))
    True
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn

from flowad.core.preprocessing import TabularScaler
from flowad.models.tabular_flow.neighbours import NeighbourDistance
from flowad.models.tabular_flow.projection import PCAProjection

__all__ = ["MIN_PASS", "SCORING_CHUNK", "FlowRatioScoring", "FlowScoring", "score_in_chunks"]

_LOG_2PI = math.log(2 * math.pi)
_F64 = np.finfo(np.float64)


#: Fewest rows per pass: float32 matrix products of 1-3 rows take other CPU kernels, whose roundings
#: differ in the last bit, so a row would score differently alone than in a batch. Shorter passes
#: are padded with zero rows.
MIN_PASS = 16
#: Rows per pass through a scoring graph on the CPU: the activations of 8,192 rows stay in the
#: processor's cache, and passes of 65,536 rows ran at half the speed. Other devices take 65,536.
SCORING_CHUNK = 8_192


def score_in_chunks(function, X: np.ndarray, device: torch.device) -> np.ndarray:
    """``function`` (a scoring graph or one of its methods) over rows ``X`` ``(N, D)``, chunk by
    chunk (memory flat in ``N``); the results concatenated, as NumPy.

    Example:
        >>> score_in_chunks(lambda t: t.sum(1), np.ones((3, 2)), torch.device("cpu"))
        array([2., 2., 2.])
    """
    size = SCORING_CHUNK if torch.device(device).type == "cpu" else 65_536
    parts = []
    with torch.no_grad():
        for start in range(0, max(len(X), 1), size):
            rows = X[start : start + size]
            n = len(rows)
            if 0 < n < MIN_PASS:  # padded: the same matrix kernels as for longer passes
                rows = np.concatenate([rows, np.zeros((MIN_PASS - n, *rows.shape[1:]))])
            chunk = torch.as_tensor(rows, dtype=torch.float64, device=device)
            parts.append(function(chunk).cpu().numpy()[:n])
    return np.concatenate(parts)


def finite(values: Tensor) -> Tensor:
    """NaN and -inf to the lowest finite float64, +inf to the highest."""
    return torch.nan_to_num(values, nan=float(_F64.min), neginf=float(_F64.min), posinf=float(_F64.max))


class FlowScoring(nn.Module):
    """Rows ``(N, D)`` float64 -> scores ``(N,)``, higher = more normal.

    The preprocessing (standardisation, the tail map and its log-Jacobian, constant columns, the PCA
    step) and the sum of the log-densities run in float64; the flow's network runs in
    ``network_dtype``. Float32 there is several times faster and moves scores by about 1e-6
    relative (at most about 1e-4); rows a float32 flow sends beyond float32's range score as the
    lowest finite float.

    Args:
        scaler: The fitted preprocessing.
        projection: The fitted PCA step, or ``None``.
        flow: The trained flow (or mixture of flows), float64.
        score_type: ``"nll"``, ``"hybrid"``, ``"latent_norm"`` or ``"mahalanobis"`` (what
            ``forward`` returns).
        latent_mean, latent_precision: Moments of the training codes ``(k,)`` and ``(k, k)``, for
            ``"mahalanobis"`` (identity moments when ``None``).
        network_dtype: ``torch.float64`` or ``torch.float32``: the precision the flow runs in (a
            float32 copy of ``flow`` for the latter).
        neighbours: For ``"hybrid"``: the k-NN distance over the training rows' flow inputs.
    """

    def __init__(self, scaler: TabularScaler, projection: PCAProjection | None, flow: nn.Module, score_type: str,
                 latent_mean: np.ndarray | None = None, latent_precision: np.ndarray | None = None,
                 network_dtype: torch.dtype = torch.float64, neighbours: NeighbourDistance | None = None) -> None:
        super().__init__()
        if network_dtype not in (torch.float32, torch.float64):
            raise ValueError(f"network_dtype must be torch.float32 or torch.float64, got {network_dtype!r}")
        self.network_dtype = network_dtype
        f64 = {"dtype": torch.float64}
        self.score_type = score_type
        self.n_model = scaler.n_model_features
        self.register_buffer("center", torch.as_tensor(scaler.center, **f64))
        self.register_buffer("scale", torch.as_tensor(scaler.scale, **f64))
        self.register_buffer("varying", torch.as_tensor(np.flatnonzero(scaler.varying), dtype=torch.int64))
        self.register_buffer("constant", torch.as_tensor(np.flatnonzero(~scaler.varying), dtype=torch.int64))
        self.tail_bound = float(scaler.tail_bound)
        extra = scaler.affine_log_abs_det - 0.5 * int((~scaler.varying).sum()) * _LOG_2PI
        self.has_projection = projection is not None
        self.n_residual = 0
        if projection is not None:
            self.register_buffer("pca_mean", torch.as_tensor(projection.mean, **f64))
            self.register_buffer("pca_components", torch.as_tensor(projection.components, **f64))
            self.register_buffer("pca_scale", torch.as_tensor(projection.scale, **f64))
            self.residual_var = float(projection.residual_var)
            self.n_residual = projection.components.shape[0] - projection.n_components
            extra += projection.log_abs_det()
            if self.n_residual:
                extra -= 0.5 * self.n_residual * math.log(2 * math.pi * self.residual_var)
        self.extra = float(extra)
        self.flow = flow if network_dtype == torch.float64 else copy.deepcopy(flow).to(network_dtype)
        k = projection.n_components if projection is not None else max(self.n_model, 1)
        self.register_buffer("latent_mean", torch.zeros(k, **f64))
        self.register_buffer("latent_precision", torch.eye(k, **f64))
        if latent_mean is not None:
            self.set_latent_moments(latent_mean, latent_precision)
        self.neighbours = neighbours

    def set_latent_moments(self, mean: np.ndarray, precision: np.ndarray) -> None:
        """Set the training codes' mean ``(k,)`` and inverse covariance ``(k, k)``."""
        self.latent_mean.copy_(torch.as_tensor(mean, dtype=torch.float64))
        self.latent_precision.copy_(torch.as_tensor(precision, dtype=torch.float64))

    def flow_inputs(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(inputs (N, k), log-density added by the preprocessing (N,), residual's whitened norm (N,))``."""
        centred = x - self.center
        inputs = (centred / self.scale).index_select(1, self.varying) if self.n_model else x[:, :1] * 0.0
        extra = (lambda c: (c * c).sum(1))(centred.index_select(1, self.constant)) * -0.5 + self.extra
        if math.isfinite(self.tail_bound) and self.n_model:  # the scaler's doubly logarithmic tail map
            bound = self.tail_bound
            logs = (inputs.abs().clamp(min=bound) / bound).log()  # 0 inside [-bound, bound]
            extra = extra - (logs + logs.log1p()).sum(1)
            inputs = torch.where(logs > 0, inputs.sign() * bound * (1 + logs.log1p()), inputs)
        residual = torch.zeros_like(extra)
        if self.has_projection:
            c = inputs - self.pca_mean
            kept = c @ self.pca_components
            if self.n_residual:
                rest = c - kept @ self.pca_components.T
                residual = (rest * rest).sum(1) / self.residual_var
                extra = extra - 0.5 * residual
            inputs = kept / self.pca_scale
        return inputs, extra, residual

    def log_likelihood(self, x: Tensor) -> Tensor:
        """Log-density ``(N,)`` of rows ``(N, D)`` in nats, in the units of the input columns."""
        inputs, extra, _ = self.flow_inputs(x)
        return finite(self._log_prob(inputs, extra))

    def _log_prob(self, inputs: Tensor, extra: Tensor) -> Tensor:
        if not self.n_model:
            return extra
        return self.flow().log_prob(inputs.to(self.network_dtype)).to(torch.float64) + extra

    def model_inputs(self, x: Tensor) -> Tensor:
        """The flow's inputs ``(N, k)`` float64 of rows ``(N, D)`` (after preprocessing and PCA)."""
        return self.flow_inputs(x)[0]

    def latent(self, x: Tensor) -> Tensor:
        """Latent codes ``(N, k)`` float64 of rows ``(N, D)`` (a single flow only)."""
        return self._codes(self.flow_inputs(x)[0])

    def _codes(self, inputs: Tensor) -> Tensor:
        return self.flow().transform(inputs.to(self.network_dtype)).to(torch.float64)

    def forward(self, x: Tensor) -> Tensor:
        """Scores ``(N,)`` of rows ``x`` ``(N, D)`` float64 (``score_type``); higher = more normal."""
        if self.score_type == "nll":
            return self.log_likelihood(x)
        if self.score_type == "hybrid":  # flow log-density + k-NN log-density (-k log r)
            inputs, extra, _ = self.flow_inputs(x)
            knn = -inputs.shape[1] * self.neighbours(inputs)
            return finite(finite(self._log_prob(inputs, extra)) + knn)
        inputs, _, residual = self.flow_inputs(x)
        z = self._codes(inputs)
        if self.score_type == "latent_norm":
            return finite(-(z * z).sum(1) - residual)
        d = z - self.latent_mean
        return finite(-((d @ self.latent_precision) * d).sum(1) - residual)


class FlowRatioScoring(nn.Module):
    """Rows ``(N, D)`` float64 -> log posterior odds ``(N,)`` of the signal class: two flows over one
    preprocessing, ``log p_signal(x) - log p_background(x) + log_prior_odds``.

    With ``novelty = e > 0`` the signal density is the mixture ``(1 - e) q_signal(x) + e exp(c)``: a
    share ``e`` of signal rows spread evenly at the density level ``c`` (``novelty_level``), standing
    for signal rows unlike the labelled ones. Rows far from both classes then score as rows of low
    background density do, ``log(e) + c - log p_background(x)``: the one-class ranking.

    The preprocessing's log-Jacobian is the same in both flows and cancels; every term is finite
    (see :func:`finite`).

    Args:
        signal: Scoring graph of the signal class's flow.
        background: Scoring graph of the background class's flow (same scaler and PCA step).
        log_prior_odds: ``log(pi_signal / pi_background)``.
        novelty: The weight ``e`` in [0, 1).
        novelty_level: ``c``, a log-density in the input's units.
    """

    def __init__(self, signal: FlowScoring, background: FlowScoring, log_prior_odds: float, novelty: float = 0.0,
                 novelty_level: float = 0.0) -> None:
        super().__init__()
        self.signal = signal
        self.background = background
        self.log_prior_odds = float(log_prior_odds)
        self.novelty = float(novelty)
        self.novelty_level = float(novelty_level)

    def signal_log_likelihood(self, x: Tensor) -> Tensor:
        """Log-density ``(N,)`` of the signal class (with its novelty part), in the input's units."""
        log_q = self.signal.log_likelihood(x)
        if self.novelty == 0.0:
            return log_q
        a = log_q + math.log1p(-self.novelty)
        b = math.log(self.novelty) + self.novelty_level
        top = torch.clamp(a, min=b)
        return top + ((a - top).exp() + (b - top).exp()).log()

    def log_ratio(self, x: Tensor) -> Tensor:
        """``log p_signal(x) - log p_background(x)`` ``(N,)``, no prior."""
        return finite(self.signal_log_likelihood(x) - self.background.log_likelihood(x))

    def forward(self, x: Tensor) -> Tensor:
        """Log posterior odds ``(N,)`` of rows ``x`` ``(N, D)`` float64; higher = more signal-like."""
        return finite(self.log_ratio(x) + self.log_prior_odds)
