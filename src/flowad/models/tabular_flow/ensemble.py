"""``FlowEnsembleDetector``: a bagged ensemble of normalizing flows, pooled into one density."""

from __future__ import annotations

from numbers import Integral

from sklearn.utils._param_validation import Interval, StrOptions

from flowad.flows.mixture import COMBINE
from flowad.models.tabular_flow.estimator import FlowDetector
from flowad.models.tabular_flow.options import FlowOptions

__all__ = ["FlowEnsembleDetector"]


class FlowEnsembleDetector(FlowDetector):
    """``n_flows`` flows, each fitted to its own split of the rows, pooled into one density.

    The rows held out for early stopping (``options.validation_fraction``) are kept from every flow;
    each flow then splits the other rows anew into its own training and early-stopping parts and
    starts from its own initialisation, so the flows differ in the data they saw (flows fitted to the
    same split barely differ). Scores are log-likelihoods of the pooled density
    (:class:`~flowad.flows.mixture.FlowMixture`); an ensemble has no single latent code, so
    ``score_type`` is always ``"nll"``. The fit costs about ``n_flows`` single flows.

    Args:
        flow: As for :class:`~flowad.FlowDetector`.
        transforms: As for :class:`~flowad.FlowDetector`.
        hidden_features: As for :class:`~flowad.FlowDetector`.
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
        n_flows: Number of flows.
        combine: ``"mixture"``: ``log((1/K) sum_k p_k(x))``, an exact normalised density, high where
            *any* flow puts mass; ``"geometric"``: ``(1/K) sum_k log p_k(x)``, high only where *every*
            flow does; unnormalised, so ``log_likelihood`` is the normalised pool's log-density plus a
            constant ``log Z <= 0``, which shifts no rank or threshold.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> FlowEnsembleDetector(n_flows=2, max_epochs=3, random_state=0).fit(X).member_epochs_
        [3, 3]
    """

    _parameter_constraints: dict = {
        **{k: v for k, v in FlowDetector._parameter_constraints.items() if k != "score_type"},
        "n_flows": [Interval(Integral, 1, None, closed="left")],
        "combine": [StrOptions(set(COMBINE))],
    }

    #: A mixture of flows has no single latent code: scores are always log-likelihoods.
    score_type = "nll"

    def __init__(
        self,
        flow: str = "maf",
        *,
        n_flows: int = 3,
        combine: str = "mixture",
        transforms: int = 5,
        hidden_features: tuple[int, ...] = (64, 64),
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
        self.n_flows = n_flows
        self.combine = combine
        self.transforms = transforms
        self.hidden_features = hidden_features
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

    def _ensemble(self) -> tuple[int, str]:
        return self.n_flows, self.combine

    def _check_fit_params(self) -> None:
        if self._opts.threshold == "chi2":
            raise ValueError("options.threshold='chi2' needs latent codes, which an ensemble of flows has not")
