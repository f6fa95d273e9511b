"""Two-class training of a density model: raise the likelihood of normal rows, lower it on
negatives (known rare-class rows, or synthetic anomalies).

The loss follows Chiu & Lai, "Self-Supervised Normalizing Flows for Image Anomaly Detection and
Localization" (CVPR 2023 workshops): ``L = L_B - L_R``, where ``L_B`` is the mean negative
log-likelihood of the normal rows and ``L_R`` the negative log-likelihood of the negatives, counted
only while a negative's log-likelihood is above a floor ``c`` and above the least likely normal row
of the batch. Without those bounds a negative could be pushed to minus infinity, which a flow can do
at the expense of everything else.

The recipe, the same for every model that offers it (tabular flows, FastFlow, PatchFlow): train
one-class on the normal data first; set the floor ``c`` to a low quantile of the normal training
data's log-likelihoods under that model (:func:`negative_floor`; 1% for the image models, the
``contamination`` for tabular flows, whose default is also 1%); then go on with the two-class loss
(:func:`two_class_losses`), so that negatives are pushed just below the normal data's low tail.

Example:
    >>> import torch
    >>> negative_floor(torch.arange(100.0), 0.01)
    0.99
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["FLOOR_QUANTILE", "NEGATIVE_MODES", "check_negative_labels", "negative_floor", "two_class_losses"]

#: How ``FlowDetector`` uses ``y`` in ``fit``: ignore it, or read 1 as a negative row.
NEGATIVE_MODES = (None, "labels")
#: The quantile of the normal data's log-likelihood that is the floor of the loss, by default.
FLOOR_QUANTILE = 0.01
#: Most values the quantile is taken over (the first ones; per-position image maps are many).
_MAX_FLOOR_VALUES = 1_000_000


def negative_floor(log_likelihoods, quantile: float = FLOOR_QUANTILE) -> float:
    """The floor ``c`` of the two-class loss: the ``quantile`` of the normal training data's
    log-likelihoods (any shape; non-finite values left out) under the one-class model."""
    values = torch.as_tensor(log_likelihoods).detach().flatten().double()[:_MAX_FLOOR_VALUES]
    values = values[torch.isfinite(values)]
    if len(values) == 0:
        raise ValueError("negative_floor: the one-class model gives no finite log-likelihood to the normal data")
    return float(torch.quantile(values.cpu(), quantile))


def check_negative_labels(y, n_rows: int) -> np.ndarray:
    """``y`` as a 0/1 integer array of shape ``(n_rows,)`` (1 = negative), with at least two
    normal rows; a ValueError naming ``y`` otherwise."""
    if y is None:
        raise ValueError("y is required when negatives='labels': 0 marks normal rows, 1 negatives")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"y must have shape ({n_rows},) like X's rows, got {y.shape}")
    if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
        raise ValueError("y must contain only 0 (normal) and 1 (negative)")
    y = y.astype(np.int64)
    if (y == 0).sum() < 2:
        raise ValueError("y must mark at least 2 rows as normal (0)")
    return y


def two_class_losses(log_prob: Tensor, labels: Tensor, floor: float | None = None,
                     weight: float = 1.0) -> Tensor:
    """Per-row losses whose mean is ``L_B - weight * L_R`` for one batch.

    Args:
        log_prob: Log-likelihood of each row, shape ``(B,)``.
        labels: Shape ``(B,)``, 0 = normal, 1 = negative.
        floor: ``c`` in nats: negatives below it no longer count (``None``: no floor besides the
            batch's least likely normal row).
        weight: Weight of the negative term.

    Returns:
        Shape ``(B,)``: normal rows carry their NLL scaled by ``B / n_normal``; counted negatives
        their log-likelihood scaled by ``weight * B / n_negative``; the rest 0.
    """
    negative = labels.bool()
    normal = ~negative
    n_normal, n_negative = int(normal.sum()), int(negative.sum())
    batch = len(log_prob)
    losses = torch.zeros_like(log_prob)
    if n_normal:
        losses = torch.where(normal, -log_prob * (batch / n_normal), losses)
    if n_negative:
        bound = log_prob[normal].min().detach() if n_normal else log_prob.new_tensor(-torch.inf)
        if floor is not None:
            bound = torch.clamp(bound, min=floor)
        counted = negative & (log_prob > bound)
        losses = torch.where(counted, log_prob * (weight * batch / n_negative), losses)
    return losses
