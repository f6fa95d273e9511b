"""The less common settings of the tabular flow detectors, in one documented object, and how
training scales with the table (:meth:`FlowOptions.training_config`).

Up to :data:`LARGE_TABLE_ROWS` training rows a flow trains in whole passes of batches of 256 at a
constant learning rate until early stopping or ``max_epochs``. Past it, with the automatic settings,
batches are :data:`MAX_AUTO_BATCH` rows, the learning rate grows with the square root of the batch
(the square-root rule for Adam: Malladi et al., "On the SDEs and Scaling Rules for Adaptive Gradient
Algorithms", arXiv:2205.10287) and is doubled at its peak, from which it decays along half a cosine
to 1% over a step budget that bounds the rows seen in all (:data:`ROW_BUDGET`); an epoch is at most
:data:`EPOCH_ROWS` rows and early stopping watches at most :data:`VALIDATION_ROWS` held-out rows.
Since the budget shows the flow at most :data:`ROW_BUDGET` rows, a larger table is fitted on a
uniform random subset of that many rows (:func:`fit_rows_cap`), preprocessing included. Training
time then stops growing with the rows, and the decay buys a higher held-out likelihood than a
constant rate in the same steps.

Example:
    >>> from flowad import FlowDetector
    >>> FlowDetector(options=FlowOptions(batch_size=512, patience=10)).options.batch_size
    512
    >>> config = FlowOptions().training_config(200, 1e-3, n_rows=1_000_000)
    >>> config.batch_size, round(config.learning_rate, 6), config.max_steps
    (2048, 0.005657, 2442)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from flowad.core.splits import HOLDOUT_FRACTION
from flowad.core.training import TrainingConfig

__all__ = ["COSINE_PEAK_FACTOR", "EPOCH_ROWS", "LARGE_TABLE_ROWS", "MAX_AUTO_BATCH", "ROW_BUDGET", "VALIDATION_ROWS",
           "FlowOptions", "auto_batch_size", "fit_rows_cap", "network_dtype"]

#: Training rows up to which the automatic settings are those of small tables (batch 256, no budget bites).
LARGE_TABLE_ROWS = 65_536
#: The automatic batch of small tables and of large ones.
BASE_BATCH, MAX_AUTO_BATCH = 256, 2048
#: Peak learning rate of the automatic cosine schedule, as a multiple of the square-root-scaled rate.
COSINE_PEAK_FACTOR = 2.0
#: Rows per epoch at most (one validation and early-stopping check per this many rows).
EPOCH_ROWS = 262_144
#: Held-out rows early stopping scores at most (a fixed random subset of more).
VALIDATION_ROWS = 65_536
#: Rows the automatic step budget lets one flow see in all (steps x batch).
ROW_BUDGET = 5_000_000


def auto_batch_size(n_rows: int) -> int:
    """The automatic batch for ``n_rows`` training rows: 256 up to :data:`LARGE_TABLE_ROWS`,
    :data:`MAX_AUTO_BATCH` above (where a step budget, not the epochs, ends training).

    Example:
        >>> [auto_batch_size(n) for n in (5_000, 65_536, 100_000, 10_000_000)]
        [256, 256, 2048, 2048]
    """
    return BASE_BATCH if n_rows <= LARGE_TABLE_ROWS else MAX_AUTO_BATCH


@dataclass(frozen=True)
class FlowOptions:
    """Training, preprocessing and threshold settings of a :class:`~flowad.FlowDetector` that the
    common case never needs to touch.

    Attributes:
        batch_size: Mini-batch size; ``"auto"``: :func:`auto_batch_size` of the training rows, with the
            learning rate scaled by ``sqrt(batch / 256)`` (see the module docstring).
        weight_decay: Adam weight decay.
        patience: Epochs without validation improvement before stopping.
        clip_grad_norm: Gradient-norm clipping bound.
        validation_fraction: Share of the fitted rows held out for early stopping (with an ensemble:
            held out from every flow, and again per flow for its own early stopping).
        validation_trim: Early stopping watches the mean validation loss without this share of the
            held-out rows the flow finds least likely (a trimmed mean), so that one held-out row far
            from every training row cannot stop training early.
        dequantize: Spread each value of a discrete column uniformly over its bin while training
            (:mod:`flowad.core.preprocessing`).
        pca_components: Reduce wide inputs before the flow (:mod:`~flowad.models.tabular_flow.projection`):
            ``"auto"`` only for more than 64 columns or fewer than 2 rows per column; an int fixes the
            number of components; ``None`` never reduces. The density stays exact (a Gaussian residual).
        trim_fraction: For training data that contain anomalies: the share of each batch's least
            likely rows left out of the loss (trimmed likelihood; Neykov et al., "Robust fitting of
            mixtures using the trimmed likelihood estimator", CSDA 2007). 0 uses every row.
        max_steps: Most optimizer steps of one flow's training; ``"auto"``: enough for
            :data:`ROW_BUDGET` rows (``ceil(ROW_BUDGET / batch)``), which only large tables reach
            before early stopping; ``None``: no budget beyond ``max_epochs``.
        lr_schedule: ``"auto"``: on large tables (more than :data:`LARGE_TABLE_ROWS` training rows)
            with the automatic batch and step budget, a cosine decay from twice the scaled learning
            rate to 1% of it over the budget; otherwise a constant rate (early stopping ends training);
            ``"constant"`` or ``"cosine"`` (from the learning rate as given, or as scaled by
            ``batch_size="auto"``): that schedule everywhere.
        scoring_dtype: Precision of the flow's network when scoring, ``"float32"`` (several times
            faster; scores move by about 1e-6 relative, at most about 1e-4) or ``"float64"``.
            Preprocessing, its log-Jacobian and the sums of log-densities are float64 either way
            (:class:`~flowad.models.tabular_flow.torch_model.FlowScoring`). Training is float32.
        threshold: ``"conformal"``: the threshold and p-values come from calibration scores
            (:mod:`flowad.core.calibration`); ``"chi2"`` (latent scores only): the analytic cut
            ``-chi2.ppf(1 - contamination, d)`` and p-values ``chi2.sf(||z||^2, d)``, exact only for a
            perfectly trained flow.
    """

    batch_size: int | str = "auto"
    weight_decay: float = 1e-5
    patience: int = 20
    clip_grad_norm: float = 5.0
    validation_fraction: float = HOLDOUT_FRACTION
    validation_trim: float = 0.05
    dequantize: bool = True
    pca_components: int | str | None = "auto"
    trim_fraction: float = 0.0
    threshold: str = "conformal"
    max_steps: int | str | None = "auto"
    lr_schedule: str = "auto"
    scoring_dtype: str = "float32"

    def __post_init__(self) -> None:
        checks = {
            "batch_size": self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size >= 1),
            "weight_decay": self.weight_decay >= 0,
            "patience": isinstance(self.patience, int) and self.patience >= 1,
            "clip_grad_norm": self.clip_grad_norm > 0,
            "validation_fraction": 0 <= self.validation_fraction < 1,
            "validation_trim": 0 <= self.validation_trim < 0.5,
            "dequantize": isinstance(self.dequantize, bool),
            "pca_components": self.pca_components in ("auto", None)
            or (isinstance(self.pca_components, int) and self.pca_components >= 1),
            "trim_fraction": 0 <= self.trim_fraction < 0.5,
            "threshold": self.threshold in ("conformal", "chi2"),
            "scoring_dtype": self.scoring_dtype in ("float32", "float64"),
            "max_steps": self.max_steps in ("auto", None) or (_is_int(self.max_steps) and self.max_steps >= 1),
            "lr_schedule": self.lr_schedule in ("auto", "constant", "cosine"),
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"FlowOptions.{name}: invalid value {getattr(self, name)!r} (see the FlowOptions "
                                 f"docstring)")

    @classmethod
    def field_names(cls) -> list[str]:
        """The option names (the parameters older model files held at the top level)."""
        return [f.name for f in fields(cls)]

    def training_config(self, max_epochs: int, learning_rate: float, n_rows: int = 0) -> TrainingConfig:
        """The optimisation settings of one flow's training on ``n_rows`` rows with these options.

        Args:
            max_epochs: The detector's epoch cap.
            learning_rate: The detector's learning rate (for batches of 256 under ``batch_size="auto"``).
            n_rows: Number of training rows (sizes the automatic batch and budget).
        """
        batch = auto_batch_size(n_rows) if self.batch_size == "auto" else int(self.batch_size)
        if self.batch_size == "auto":
            learning_rate = learning_rate * math.sqrt(batch / BASE_BATCH)
        max_steps = math.ceil(ROW_BUDGET / batch) if self.max_steps == "auto" else self.max_steps
        schedule = self.lr_schedule
        if schedule == "auto":
            automatic = self.batch_size == "auto" and self.max_steps == "auto"
            schedule = "cosine" if automatic and n_rows > LARGE_TABLE_ROWS else "constant"
            if schedule == "cosine":
                learning_rate = learning_rate * COSINE_PEAK_FACTOR
        return TrainingConfig(max_epochs=max_epochs, batch_size=batch, learning_rate=learning_rate,
                              weight_decay=self.weight_decay, patience=self.patience,
                              clip_grad_norm=self.clip_grad_norm, validation_trim=self.validation_trim,
                              max_steps=max_steps, epoch_rows=EPOCH_ROWS, max_validation_rows=VALIDATION_ROWS,
                              lr_schedule=schedule)


def fit_rows_cap(options: FlowOptions) -> int | None:
    """Most rows one flow's fit uses under ``options``: with the automatic batch and step budget,
    as many as the budget can show the flow once (:data:`ROW_BUDGET` training rows plus the
    validation share), since rows beyond them would never be seen; ``None`` (no cap) otherwise.

    Example:
        >>> fit_rows_cap(FlowOptions()), fit_rows_cap(FlowOptions(max_steps=None))
        (5555556, None)
    """
    if options.batch_size != "auto" or options.max_steps != "auto":
        return None
    return math.ceil(ROW_BUDGET / (1 - options.validation_fraction))


def network_dtype(options: FlowOptions) -> torch.dtype:
    """The torch dtype of ``options.scoring_dtype``."""
    return torch.float32 if options.scoring_dtype == "float32" else torch.float64


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
