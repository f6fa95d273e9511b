"""``FlowRatioClassifier``: two flows, one per class, and the Neyman-Pearson test on their density ratio.

By the Neyman-Pearson lemma the most powerful test of "background" against "signal" at a fixed
background acceptance rejects where ``p_signal(x) / p_background(x)`` is large. Two normalizing
flows estimate both densities exactly, so their log-ratio is the classifier's score, and its
threshold comes from background rows that neither flow saw (the conformal rule of
:mod:`flowad.core.calibration`): the share of new background rows accepted as signal is the one asked
for, within binomial noise.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (600, 2)), rng.normal(2, 1, (200, 2))]
    >>> y = np.r_[np.zeros(600, int), np.ones(200, int)]
    >>> model = FlowRatioClassifier(max_epochs=5, random_state=0).fit(X, y)
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict
from numbers import Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from flowad.core.calibration import Calibration, split_calibration_rows
from flowad.core.estimator import prefixed, unprefixed
from flowad.core.preprocessing import TabularScaler
from flowad.core.splits import MIN_VALIDATION, split_validation
from flowad.core.threads import resolve_threads, torch_threads
from flowad.core.training import EpochCallback, TrainingHistory, resolve_device, seeded_torch
from flowad.core.two_class import negative_floor
from flowad.flows import build_vector_flow
from flowad.models.tabular_flow.estimator import FlowDetector
from flowad.models.tabular_flow.options import FlowOptions, network_dtype
from flowad.models.tabular_flow.projection import PCAProjection, resolve_components
from flowad.models.tabular_flow.torch_model import FlowRatioScoring, FlowScoring, score_in_chunks
from flowad.models.tabular_flow.training import FlowFit, load_flow, train_flow

__all__ = ["BASES", "FlowRatioClassifier"]

#: Where the signal class's flow starts: the trained background flow, or fresh weights.
BASES = ("background", "none")


class FlowRatioClassifier(ClassifierMixin, BaseEstimator):
    """Binary classifier from two normalizing flows: the log density ratio, thresholded at a chosen
    background acceptance.

    ``fit(X, y)`` reads ``classes_[0]`` (e.g. 0, hadrons, normal rows) as the *background* and
    ``classes_[1]`` (e.g. 1, gammas, the rare class) as the *signal*. One preprocessing
    (:class:`~flowad.core.preprocessing.TabularScaler`, fitted on background rows) feeds both flows,
    so its Jacobian cancels in the ratio. A share of the background rows is held out from both
    flows: their scores set ``threshold_`` so that a share ``background_acceptance`` of new
    background rows is predicted signal (conformal, exact for exchangeable background rows), and
    :meth:`threshold_for` gives the cut for any other acceptance.

    **Few signal rows.** With ``base="background"`` (the default) the signal flow starts from the
    trained background flow and is fine-tuned on the signal rows under a Gaussian prior centred on
    the background flow's weights (``shrinkage``), early-stopping on held-out signal rows. With few
    signal rows the prior dominates and the signal density stays close to the background density,
    so the ratio stays near 0 (uninformative) where the signal rows say nothing, instead of
    following a flow fitted to a handful of points; with many signal rows the data dominate. Mixing
    the background density into the signal density with one global weight would not do this: it is
    a monotone map of the ratio and leaves every ranking and every Neyman-Pearson cut where it was.

    **What it does not see.** The pure ratio says how much more a row looks like the labelled
    signal rows than like the background. A row unlike both lies in the tails of both flows, where
    the ratio depends on how each flow extrapolates: new kinds of anomalies, unlike the labelled
    ones, can get any score. Where those matter (anomaly detection with a few labelled anomalies),
    give the signal class a ``novelty`` part, or use
    :class:`~flowad.models.tabular_flow.two_class.TwoClassFlowDetector` or the one-class
    :class:`~flowad.FlowDetector`, which flag every row of low background density.

    References:
        Neyman & Pearson, "On the Problem of the Most Efficient Tests of Statistical Hypotheses",
        Phil. Trans. R. Soc. A 231 (1933); Bates et al., "Testing for outliers with conformal
        p-values", Annals of Statistics 51 (2023).

    Args:
        flow: ``"maf"``, ``"realnvp"`` or ``"nsf"`` (both flows).
        transforms: Number of flow transforms.
        hidden_features: Hidden widths of each transform's conditioner.
        background_acceptance: Share of background rows ``predict`` labels signal, in (0, 0.5].
        prior: Signal share the probabilities assume: ``"train"`` (the training labels' share) or a
            float in (0, 1). It moves ``predict_proba`` only; ``predict`` thresholds at the acceptance.
        base: ``"background"`` or ``"none"``, see above.
        shrinkage: With ``base="background"``, the strength ``s`` of a Gaussian prior on the signal
            flow's weights centred on the background flow's: the signal flow minimises its mean
            negative log-likelihood plus ``s * ||theta - theta_background||^2 / n_signal`` (a MAP
            estimate; ``s = 1 / (2 sigma^2)`` for a prior spread ``sigma`` per weight). The penalty
            fades as signal rows grow; 0 turns it off.
        novelty: Weight ``e`` in [0, 1) of signal rows unlike the labelled ones: the signal density
            becomes ``(1 - e) q_signal(x) + e exp(c)``, a share ``e`` spread evenly at the density
            ``c`` of the background's 1% least likely training rows (``novelty_level_``, the floor
            rule of :mod:`flowad.core.two_class`), so that rows far from both classes score as rows of
            low background density do. 0 (the default): the pure ratio, right where every signal row
            is of a known kind (gammas against hadrons).
        noise_std: As for :class:`~flowad.FlowDetector`.
        tail_bound: As for :class:`~flowad.FlowDetector`.
        max_epochs: Upper bound on epochs of each flow.
        learning_rate: Adam learning rate.
        options: As for :class:`~flowad.FlowDetector` (batch size, patience, PCA step, ...).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: As for :class:`~flowad.FlowDetector`.
        random_state: Seed of the splits, initialisation and batches.

    Attributes:
        classes_: The two labels, ``[background, signal]``.
        threshold_: Cut on :meth:`decision_scores` at ``background_acceptance``.
        calibration_: Scores of the held-out background rows (:class:`~flowad.core.calibration.Calibration`
            of minus the scores: higher = more background-like).
        scoring_: The scoring graph (:class:`~flowad.models.tabular_flow.torch_model.FlowRatioScoring`);
            every score and the ONNX export run it.
        log_prior_odds_: ``log(prior / (1 - prior))``.
        novelty_level_: The density level ``c`` of the novelty part (log-density, input units).
        histories_: Training curves of the background and the signal flow.
        n_features_in_: Number of input columns.
    """

    _parameter_constraints: dict = {
        **{name: FlowDetector._parameter_constraints[name] for name in (
            "flow", "transforms", "hidden_features", "noise_std", "tail_bound", "max_epochs", "learning_rate",
            "options", "device", "threads", "random_state")},
        "background_acceptance": [Interval(Real, 0, 0.5, closed="right")],
        "prior": [StrOptions({"train"}), Interval(Real, 0, 1, closed="neither")],
        "base": [StrOptions(set(BASES))],
        "shrinkage": [Interval(Real, 0, None, closed="left")],
        "novelty": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        flow: str = "maf",
        *,
        transforms: int = 5,
        hidden_features: tuple[int, ...] = (64, 64),
        background_acceptance: float = 0.01,
        prior: float | str = "train",
        base: str = "background",
        shrinkage: float = 50.0,
        novelty: float = 0.0,
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
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.background_acceptance = background_acceptance
        self.prior = prior
        self.base = base
        self.shrinkage = shrinkage
        self.novelty = novelty
        self.noise_std = noise_std
        self.tail_bound = tail_bound
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.options = options
        self.device = device
        self.threads = threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def fit(self, X, y, *, callback: EpochCallback | None = None) -> FlowRatioClassifier:
        """Fit both flows and set the threshold.

        Args:
            X: Shape ``(N, D)``, finite numbers (or a DataFrame of numeric columns).
            y: Shape ``(N,)``, exactly two labels; the smaller (sorted first) is the background.
                At least 4 background rows (some are held out for the threshold) and 1 signal row.
            callback: Called after each epoch with ``(epoch, train_loss, validation_loss)``, for the
                background flow and then for the signal flow.

        Returns:
            ``self``.
        """
        self._validate_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=False, reset=True)
        if type_of_target(y) != "binary" or len(np.unique(y)) != 2:
            raise ValueError(f"y must hold exactly two classes (background, signal), got {len(np.unique(y))}")
        self.classes_, labels = np.unique(y, return_inverse=True)
        background, signal = X[labels == 0], X[labels == 1]
        if len(background) < 4:
            raise ValueError(f"y must mark at least 4 rows as background ({self.classes_[0]!r}), got {len(background)}")
        opts = self.options if self.options is not None else FlowOptions()
        rng = np.random.default_rng(self.random_state)
        torch_seed = int(rng.integers(2**31 - 1))
        device = resolve_device(self.device)

        fit_rows, calibration_rows = split_calibration_rows(np.zeros(len(background), np.int64), rng)
        fitted_background = background[fit_rows]
        scaler = TabularScaler.fit(fitted_background, dequantize=opts.dequantize, tail_bound=self.tail_bound)
        d = scaler.n_model_features
        k = resolve_components(opts.pca_components, len(fit_rows), d)
        projection = PCAProjection.fit(scaler.transform(fitted_background), k) if 0 < k < d else None
        width_of = max(k, 1)

        with torch_threads(self._threads()):
            with seeded_torch(torch_seed):
                background_flow = self._build_flow(width_of).to(device)
            background_history = self._train(background_flow, scaler, projection, fitted_background, device,
                                              torch_seed, rng, MIN_VALIDATION, callback=callback)
            anchor = None
            if self.base == "background":
                signal_flow = copy.deepcopy(background_flow)
                anchor = [p.detach().clone() for p in background_flow.parameters()] if self.shrinkage > 0 else None
            else:
                with seeded_torch(torch_seed + 1):
                    signal_flow = self._build_flow(width_of).to(device)
            signal_history = self._train(signal_flow, scaler, projection, signal, device, torch_seed + 1,
                                         rng, 1, anchor, callback)

        share = len(signal) / len(X) if self.prior == "train" else float(self.prior)
        self.log_prior_odds_ = math.log(share / (1.0 - share))
        self.scaler_, self.projection_, self.device_ = scaler, projection, device
        self.novelty_level_ = 0.0
        self.scoring_ = self._scoring(signal_flow.double().eval(), background_flow.double().eval())
        background_log_likelihood = self._run_graph(fitted_background, self.scoring_.background.log_likelihood)
        self.novelty_level_ = negative_floor(background_log_likelihood)
        self.scoring_.novelty_level = self.novelty_level_
        self.histories_ = {"background": background_history, "signal": signal_history}
        held_out = self._run_graph(background[calibration_rows], self.scoring_)
        self.calibration_ = Calibration.from_scores(-held_out, "split")
        self.threshold_ = self.threshold_for(self.background_acceptance)
        return self

    def _train(self, flow, scaler, projection, rows, device, seed, rng, min_validation,
               anchor: list[torch.Tensor] | None = None, callback: EpochCallback | None = None) -> TrainingHistory:
        """Train ``flow`` on ``rows`` (early-stopping on a share of them); with ``anchor`` (weights
        like ``flow``'s) under the ``shrinkage`` prior centred there."""
        low, width = scaler.dequantization_bins(rows)
        opts = self.options if self.options is not None else FlowOptions()
        train_idx, val_idx = split_validation(len(rows), opts.validation_fraction, rng, min_validation)
        if scaler.n_model_features == 0:
            return TrainingHistory()
        config = opts.training_config(self.max_epochs, self.learning_rate, len(train_idx))
        fit = FlowFit(flow, projection, low, width, device, seed, config, self.noise_std, opts.trim_fraction)
        penalty = None
        if anchor is not None:
            weight = float(self.shrinkage) / len(train_idx)
            parameters = list(flow.parameters())

            def penalty(_module) -> torch.Tensor:
                return weight * sum(((p - a) ** 2).sum() for p, a in zip(parameters, anchor, strict=True))

        return train_flow(fit, train_idx, val_idx, callback, penalty=penalty)

    def _build_flow(self, features: int) -> torch.nn.Module:
        return build_vector_flow(self.flow, features, self.transforms, tuple(self.hidden_features))

    def _scoring(self, signal_flow, background_flow) -> FlowRatioScoring:
        dtype = network_dtype(self.options if self.options is not None else FlowOptions())
        graphs = [FlowScoring(self.scaler_, self.projection_, f, "nll", network_dtype=dtype)
                  for f in (signal_flow, background_flow)]
        graph = FlowRatioScoring(*graphs, self.log_prior_odds_, float(self.novelty), self.novelty_level_)
        return graph.to(self.device_)

    def _threads(self) -> int | None:
        return resolve_threads(self.threads, max((*tuple(self.hidden_features), 1)))

    # --------------------------------------------------------------- scores
    def _run_graph(self, X: np.ndarray, function) -> np.ndarray:
        """``function`` (the scoring graph or one of its methods) over rows ``X`` ``(N, D)``, in chunks."""
        with torch_threads(self._threads()):
            return score_in_chunks(function, X, self.device_)

    def _input(self, X) -> np.ndarray:
        check_is_fitted(self, "scoring_")
        return validate_data(self, X, dtype=np.float64, reset=False)

    def log_density_ratio(self, X) -> np.ndarray:
        """``log p_signal(x) - log p_background(x)`` in nats, shape ``(N,)``.

        Args:
            X: Shape ``(N, D)``.
        """
        return self._run_graph(self._input(X), self.scoring_.log_ratio)

    def decision_scores(self, X) -> np.ndarray:
        """Log posterior odds of the signal class, ``log_density_ratio(X) + log_prior_odds_``, ``(N,)``."""
        return self._run_graph(self._input(X), self.scoring_)

    def decision_function(self, X) -> np.ndarray:
        """``decision_scores(X) - threshold_``, shape ``(N,)``: positive where ``predict`` says signal."""
        return self.decision_scores(X) - self.threshold_

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` (signal) where the score passes ``threshold_``, else ``classes_[0]``; ``(N,)``."""
        return self.classes_[(self.decision_function(X) > 0).astype(np.int64)]

    def predict_proba(self, X) -> np.ndarray:
        """Posterior class probabilities ``(N, 2)`` under ``prior`` (columns follow ``classes_``).

        They are as good as the two densities are; for decisions at a background acceptance use
        :meth:`predict` or :meth:`background_p_values`, whose error rate is guaranteed.
        """
        signal = 1.0 / (1.0 + np.exp(-np.clip(self.decision_scores(X), -700, 700)))
        return np.column_stack([1.0 - signal, signal])

    def background_p_values(self, X) -> np.ndarray:
        """Conformal p-value of each row under "background", shape ``(N,)``: the share of held-out
        background rows at least as signal-like. ``p <= a`` accepts a share ``a`` of background rows."""
        return self.calibration_.p_values(-self.decision_scores(X))

    def threshold_for(self, background_acceptance: float) -> float:
        """The cut on :meth:`decision_scores` that accepts a share ``background_acceptance`` of new
        background rows as signal (rows above it are signal)."""
        if not 0.0 < float(background_acceptance) < 1.0:
            raise ValueError(f"background_acceptance must be in (0, 1), got {background_acceptance!r}")
        check_is_fitted(self, "calibration_")
        return -self.calibration_.offset(float(background_acceptance))

    # ---------------------------------------------------------- model files
    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state = {"classes_": self.classes_.tolist(), "threshold_": self.threshold_,
                 "log_prior_odds_": self.log_prior_odds_, "novelty_level_": self.novelty_level_,
                 "n_features_in_": self.n_features_in_,
                 "histories_": {k: asdict(v) for k, v in self.histories_.items()}}
        if hasattr(self, "feature_names_in_"):
            state["feature_names_in_"] = list(self.feature_names_in_)
        arrays = {**prefixed("scaler", self.scaler_.to_arrays()),
                  **prefixed("calibration", self.calibration_.to_arrays())}
        if self.projection_ is not None:
            arrays.update(prefixed("projection", self.projection_.to_arrays()))
        for name in ("signal", "background"):
            flow = getattr(self.scoring_, name).flow
            arrays.update(prefixed(name, {k: v.detach().cpu().numpy() for k, v in flow.state_dict().items()}))
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.classes_ = np.asarray(state["classes_"])
        self.threshold_ = float(state["threshold_"])
        self.log_prior_odds_ = float(state["log_prior_odds_"])
        self.novelty_level_ = float(state["novelty_level_"])
        self.n_features_in_ = int(state["n_features_in_"])
        if "feature_names_in_" in state:
            self.feature_names_in_ = np.asarray(state["feature_names_in_"], dtype=object)
        self.histories_ = {k: TrainingHistory.from_state(h) for k, h in state["histories_"].items()}
        self.scaler_ = TabularScaler.from_arrays(unprefixed("scaler", arrays))
        projection = unprefixed("projection", arrays)
        self.projection_ = PCAProjection.from_arrays(projection) if projection else None
        self.calibration_ = Calibration.from_arrays(unprefixed("calibration", arrays), "split")
        self.device_ = resolve_device(self.device)
        width = self.projection_.n_components if self.projection_ is not None else self.scaler_.n_model_features
        flows = []
        for name in ("signal", "background"):
            flows.append(load_flow(lambda: self._build_flow(max(width, 1)), unprefixed(name, arrays), self.device_,
                                   f"{name} flow"))
        self.scoring_ = self._scoring(*flows)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
