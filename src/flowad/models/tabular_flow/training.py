"""How ``FlowDetector`` trains its flow: maximum likelihood on dequantised rows, optionally trimmed,
and the two-class variants (known negatives, or negatives drawn from the flow's own latent tail).

Everything works in the *model-input* space of :class:`~flowad.core.preprocessing.TabularScaler`
(scaled rows; discrete columns as bins ``[low, low + width)``); the optional PCA step maps those rows
to the flow's input inside the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property, partial

import numpy as np
import torch
from scipy.stats import chi2
from torch import nn

from flowad.core.model_files import check_module_shapes
from flowad.core.training import EpochCallback, TrainingConfig, TrainingHistory, split_validation, train_module
from flowad.core.two_class import negative_floor, two_class_losses
from flowad.models.tabular_flow.projection import PCAProjection

__all__ = ["FlowFit", "load_flow", "log_prob_quantile", "stratified_validation", "tail_samples", "train_flow",
           "train_with_synthetic"]


@dataclass
class FlowFit:
    """One fit's flow, input pipeline and settings.

    Attributes:
        flow: The zuko flow being trained.
        projection: The PCA step before the flow, or None.
        low, width: Model-input rows and their dequantisation bin widths, shapes ``(N, d)``.
        device: Torch device of the flow.
        seed: Seed of batches, noise and validation noise.
        config: Optimisation settings.
        noise_std: Gaussian noise added to training rows.
        trim_fraction: Share of each batch's least likely rows left out of the one-class loss.
        negative_weight: Weight of the negative term of the two-class loss.
    """

    flow: nn.Module
    projection: PCAProjection | None
    low: np.ndarray
    width: np.ndarray
    device: torch.device
    seed: int
    config: TrainingConfig
    noise_std: float = 0.0
    trim_fraction: float = 0.0
    negative_weight: float = 1.0

    def to_tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32, device=self.device)

    @cached_property
    def _projection_tensors(self) -> tuple[torch.Tensor, ...]:
        p = self.projection
        return tuple(self.to_tensor(a) for a in (p.mean, p.components, p.scale))

    def project(self, batch: torch.Tensor) -> torch.Tensor:
        """Model-input rows ``(B, d)`` -> the flow's input ``(B, k)`` (whitened PCA, or identity)."""
        if self.projection is None:
            return batch
        mean, components, scale = self._projection_tensors
        return ((batch - mean) @ components) / scale


def load_flow(build: Callable[[], nn.Module], weights: dict[str, np.ndarray], device: torch.device,
              what: str = "flow") -> nn.Module:
    """A trained flow from its saved ``weights``: shapes checked against ``build()``'s before any
    weight is copied, float64, on ``device``, in eval mode."""
    check_module_shapes(build, weights, what)
    flow = build().double()
    flow.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
    return flow.to(device).eval()


def train_flow(fit: FlowFit, train_idx: np.ndarray, val_idx: np.ndarray, callback: EpochCallback | None = None,
               labels: np.ndarray | None = None, floor: float | None = None,
               penalty: Callable[[nn.Module], torch.Tensor] | None = None) -> TrainingHistory:
    """Train on rows ``train_idx`` (dequantised: ``low + U * width``), early-stopping on ``val_idx``.

    With ``labels`` (shape ``(N,)``, 1 = negative) the loss is the two-class one with ``floor``.
    ``penalty(flow)``, a scalar, is added to every row's loss (a prior on the weights).
    """
    low, width = fit.low, fit.width
    val_noise = np.random.default_rng(fit.seed).random((len(val_idx), low.shape[1]))
    trim = fit.trim_fraction

    def row_losses(module: nn.Module, batch: torch.Tensor, batch_labels=None) -> torch.Tensor:
        log_prob = module().log_prob(fit.project(batch))
        if batch_labels is not None:
            return two_class_losses(log_prob, batch_labels, floor, fit.negative_weight)
        if trim == 0 or len(log_prob) < 4:
            return -log_prob
        return torch.topk(-log_prob, int(np.ceil((1 - trim) * len(log_prob))), largest=False).values

    def loss(module: nn.Module, batch: torch.Tensor, batch_labels=None) -> torch.Tensor:
        values = row_losses(module, batch, batch_labels)
        return values if penalty is None else values + penalty(module)

    label_tensors = {}
    if labels is not None:
        label_tensors = {"train_labels": torch.as_tensor(labels[train_idx], device=fit.device),
                         "validation_labels": torch.as_tensor(labels[val_idx], device=fit.device)}
    return train_module(
        fit.flow,
        loss,
        train=fit.to_tensor(low[train_idx]),
        validation=fit.to_tensor(low[val_idx] + val_noise * width[val_idx]),
        config=fit.config,
        generator=torch.Generator(device=fit.device).manual_seed(fit.seed),
        augment=partial(_augment, noise_std=fit.noise_std) if width.any() or fit.noise_std > 0 else None,
        train_extra=fit.to_tensor(width[train_idx]),
        callback=callback,
        **label_tensors,
    )


def log_prob_quantile(fit: FlowFit, rows: np.ndarray, q: float) -> float:
    """The two-class floor: the ``q`` quantile of the flow's log-density of model-input ``rows`` ``(M, d)``."""
    with torch.no_grad():
        return negative_floor(fit.flow().log_prob(fit.project(fit.to_tensor(rows))), q)


def tail_samples(fit: FlowFit, n: int, rng: np.random.Generator, quantile: float = 0.99) -> np.ndarray:
    """``n`` model-input rows whose latent codes lie beyond the chi-square ``quantile`` (norm drawn
    from the tail by inverse CDF, direction uniform); rows the inverse flow maps to non-finite or
    huge values are dropped."""
    k = fit.projection.n_components if fit.projection is not None else int(fit.flow().base.event_shape[0])
    radius = np.sqrt(chi2.ppf(quantile + (1 - quantile) * rng.random(n) * (1 - 1e-9), df=k))
    directions = rng.normal(size=(n, k))
    z = directions / np.linalg.norm(directions, axis=1, keepdims=True) * radius[:, None]
    with torch.no_grad():
        x = fit.flow().transform.inv(fit.to_tensor(z)).cpu().numpy().astype(np.float64)
    if fit.projection is not None:
        p = fit.projection
        x = p.mean + (x * p.scale) @ p.components.T
    keep = np.isfinite(x).all(axis=1) & (np.abs(x).max(axis=1) < 1e3)
    if not keep.any():
        raise ValueError("negatives='synthetic': the flow's inverse gave no finite samples; try more epochs")
    return x[keep]


def train_with_synthetic(fit: FlowFit, train_idx: np.ndarray, val_idx: np.ndarray, callback, rng,
                         floor: float | str | None, q: float) -> tuple[TrainingHistory, int, float | None]:
    """One-class warm start, then two-class training against negatives from the warm flow's latent
    tail (one per ten rows). ``floor="auto"`` is the ``q`` quantile of the training rows' log-density.

    Returns:
        ``(history, number of synthetic negatives, floor used)``.
    """
    train_flow(fit, train_idx, val_idx)
    if floor == "auto":
        floor = log_prob_quantile(fit, fit.low[train_idx] + 0.5 * fit.width[train_idx], q)
    n_train, n_val = max(1, len(train_idx) // 10), max(1, len(val_idx) // 10)
    negatives = tail_samples(fit, n_train + n_val, rng)
    n_train = min(n_train, max(1, len(negatives) - n_val))
    first = len(fit.low)
    extended = replace(fit, low=np.vstack([fit.low, negatives]), width=np.vstack([fit.width, np.zeros_like(negatives)]))
    labels = np.r_[np.zeros(first, np.int64), np.ones(len(negatives), np.int64)]
    history = train_flow(extended, np.r_[train_idx, first + np.arange(n_train)],
                         np.r_[val_idx, first + np.arange(n_train, len(negatives))], callback, labels, floor)
    return history, len(negatives), floor


def stratified_validation(labels: np.ndarray, fraction: float, rng: np.random.Generator):
    """Train / validation indices with each label split separately (both parts keep normal rows)."""
    parts = [split_validation(int((labels == v).sum()), fraction, rng, 1) for v in (0, 1)]
    rows = [np.flatnonzero(labels == v) for v in (0, 1)]
    train = np.sort(np.concatenate([r[p[0]] for r, p in zip(rows, parts, strict=True)]))
    val = np.sort(np.concatenate([r[p[1]] for r, p in zip(rows, parts, strict=True)]))
    return train, val


def _augment(low: torch.Tensor, width: torch.Tensor, generator: torch.Generator, noise_std: float) -> torch.Tensor:
    """Uniform draw inside each value's bin, ``low + U(0, 1) * width`` (shapes ``(B, D)``), plus
    Gaussian noise of standard deviation ``noise_std``."""
    x = low + torch.rand(low.shape, generator=generator, device=low.device, dtype=low.dtype) * width
    if noise_std > 0:
        x = x + noise_std * torch.randn(low.shape, generator=generator, device=low.device, dtype=low.dtype)
    return x
