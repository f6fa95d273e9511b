"""The less common settings of the tabular flow detectors, in one documented object.

Example:
    >>> from flowad import FlowDetector
    >>> FlowDetector(options=FlowOptions(batch_size=512, patience=10)).options.batch_size
    512
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from flowad.core.splits import HOLDOUT_FRACTION
from flowad.core.training import TrainingConfig

__all__ = ["FlowOptions"]


@dataclass(frozen=True)
class FlowOptions:
    """Training, preprocessing and threshold settings of a :class:`~flowad.FlowDetector` that the
    common case never needs to touch.

    Attributes:
        batch_size: Mini-batch size.
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
        threshold: ``"conformal"``: the threshold and p-values come from calibration scores
            (:mod:`flowad.core.calibration`); ``"chi2"`` (latent scores only): the analytic cut
            ``-chi2.ppf(1 - contamination, d)`` and p-values ``chi2.sf(||z||^2, d)``, exact only for a
            perfectly trained flow.
    """

    batch_size: int = 256
    weight_decay: float = 1e-5
    patience: int = 20
    clip_grad_norm: float = 5.0
    validation_fraction: float = HOLDOUT_FRACTION
    validation_trim: float = 0.05
    dequantize: bool = True
    pca_components: int | str | None = "auto"
    trim_fraction: float = 0.0
    threshold: str = "conformal"

    def __post_init__(self) -> None:
        checks = {
            "batch_size": isinstance(self.batch_size, int) and self.batch_size >= 1,
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
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"FlowOptions.{name}: invalid value {getattr(self, name)!r} (see the FlowOptions "
                                 f"docstring)")

    @classmethod
    def field_names(cls) -> list[str]:
        """The option names (the parameters older model files held at the top level)."""
        return [f.name for f in fields(cls)]

    def training_config(self, max_epochs: int, learning_rate: float) -> TrainingConfig:
        """The optimisation settings of one flow's training with these options."""
        return TrainingConfig(max_epochs=max_epochs, batch_size=self.batch_size, learning_rate=learning_rate,
                              weight_decay=self.weight_decay, patience=self.patience,
                              clip_grad_norm=self.clip_grad_norm, validation_trim=self.validation_trim)
