"""``TwoClassFlowDetector``: a flow trained to raise the likelihood of normal rows and lower it on
negatives (known rare-class rows, or negatives drawn from its own latent tail)."""

from __future__ import annotations

from numbers import Real

from sklearn.utils._param_validation import Interval, StrOptions

from flowad.models.tabular_flow.estimator import FlowDetector
from flowad.models.tabular_flow.options import FlowOptions

__all__ = ["TwoClassFlowDetector"]


class TwoClassFlowDetector(FlowDetector):
    """A flow with the two-class loss ``L_B - L_R`` (:mod:`flowad.core.two_class`; Chiu & Lai,
    "Self-Supervised Normalizing Flows for Image Anomaly Detection and Localization", CVPR 2023
    workshops). Preprocessing and the threshold use the normal rows only.

    Args:
        flow: As for :class:`~flowad.FlowDetector`.
        transforms: As for :class:`~flowad.FlowDetector`.
        hidden_features: As for :class:`~flowad.FlowDetector`.
        score_type: As for :class:`~flowad.FlowDetector`.
        contamination: As for :class:`~flowad.FlowDetector`.
        calibration: As for :class:`~flowad.FlowDetector`.
        noise_std: As for :class:`~flowad.FlowDetector`.
        tail_bound: As for :class:`~flowad.FlowDetector`.
        max_epochs: As for :class:`~flowad.FlowDetector`.
        learning_rate: As for :class:`~flowad.FlowDetector`.
        options: As for :class:`~flowad.FlowDetector`.
        device: As for :class:`~flowad.FlowDetector`.
        threads: As for :class:`~flowad.FlowDetector`.
        random_state: As for :class:`~flowad.FlowDetector`.
        negatives: ``"labels"``: ``fit(X, y)`` reads ``y == 1`` as negative rows (a known rare class,
            or synthetic anomalies) whose likelihood training lowers, ``y == 0`` as normal rows.
            ``"synthetic"``: ``y`` is ignored; after a one-class warm start the flow draws its own
            negatives (latent codes beyond the chi-square 0.99 quantile, one per ten training rows,
            mapped back through the inverse flow) and trains against them.
        negative_floor: The floor ``c`` of the loss. ``"auto"``: train one-class on the normal rows
            first, then set ``c`` to the ``contamination`` quantile of their log-likelihoods under
            that flow (``negative_floor_``) and go on with the two-class loss: negatives are pushed
            just below the normal rows' low tail, not towards minus infinity. A float: ``c`` in the
            flow's input units, no warm start. ``None``: only the batch's least likely normal row
            bounds the loss (the paper's rule).
        negative_weight: Weight of the negative term (1: the paper's loss).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> X, y = np.r_[rng.normal(size=(300, 2)), rng.normal(4, 1, (30, 2))], np.r_[[0] * 300, [1] * 30]
        >>> detector = TwoClassFlowDetector(max_epochs=3, random_state=0).fit(X, y)
        >>> bool(detector.score_samples(X[y == 1]).mean() < detector.score_samples(X[y == 0]).mean())
        True
    """

    _parameter_constraints: dict = {
        **FlowDetector._parameter_constraints,
        "negatives": [StrOptions({"labels", "synthetic"})],
        "negative_floor": [StrOptions({"auto"}), Real, None],
        "negative_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        flow: str = "maf",
        *,
        negatives: str = "labels",
        negative_floor: float | str | None = "auto",
        negative_weight: float = 1.0,
        transforms: int = 5,
        hidden_features: tuple[int, ...] = (64, 64),
        score_type: str = "nll",
        contamination: float | str = "auto",
        calibration: str = "auto",
        noise_std: float = 0.05,
        tail_bound: float | None = 100.0,
        max_epochs: int = 200,
        learning_rate: float = 1e-3,
        options: FlowOptions | None = None,
        device: str = "auto",
        threads: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.flow = flow
        self.negatives = negatives
        self.negative_floor = negative_floor
        self.negative_weight = negative_weight
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.score_type = score_type
        self.contamination = contamination
        self.calibration = calibration
        self.noise_std = noise_std
        self.tail_bound = tail_bound
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.options = options
        self.device = device
        self.threads = threads
        self.random_state = random_state

    def _two_class(self) -> tuple[str | None, float | str | None, float]:
        return self.negatives, self.negative_floor, self.negative_weight
