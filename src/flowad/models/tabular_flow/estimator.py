"""``FlowDetector``: a normalizing flow fitted to normal data, scored by likelihood or latent distance."""

from __future__ import annotations

import logging
from dataclasses import asdict
from numbers import Integral, Real

import numpy as np
import torch
from scipy.stats import chi2
from sklearn.utils._param_validation import Interval, StrOptions

from flowad.core.distributed import agreed_random_state
from flowad.core.estimator import BaseDetector, contamination_value, finite_scores, prefixed, unprefixed
from flowad.core.preprocessing import TabularScaler
from flowad.core.threads import resolve_threads, torch_threads
from flowad.core.training import (
    MIN_VALIDATION,
    EpochCallback,
    TrainingConfig,
    TrainingHistory,
    resolve_device,
    seeded_torch,
    split_validation,
    warn_if_untrained,
)
from flowad.core.two_class import check_negative_labels
from flowad.flows import FLOW_KINDS, FlowMixture, build_vector_flow
from flowad.models.tabular_flow.neighbours import NeighbourDistance, reference_rows
from flowad.models.tabular_flow.options import FlowOptions, fit_rows_cap, network_dtype
from flowad.models.tabular_flow.projection import PCAProjection, resolve_components
from flowad.models.tabular_flow.torch_model import FlowScoring, score_in_chunks
from flowad.models.tabular_flow.training import (
    FlowFit,
    load_flow,
    log_prob_quantile,
    stratified_validation,
    train_flow,
    train_with_synthetic,
)

__all__ = ["FlowDetector"]

logger = logging.getLogger(__name__)

SCORES = ("nll", "hybrid", "latent_norm", "mahalanobis")


class FlowDetector(BaseDetector):
    """Anomaly detector built on a normalizing flow (MAF, RealNVP or neural-spline flow).

    The flow is fitted by maximum likelihood to normal rows. Rows the flow finds unlikely, or whose
    latent codes lie far from the origin, are anomalies. Scores are exact log-densities in the units
    of the input columns.

    Preprocessing is learned in ``fit`` (:class:`~flowad.core.preprocessing.TabularScaler`):
    robust standardisation, extreme values compressed (``tail_bound``), constant columns set aside,
    discrete columns dequantised. Training holds out a share of the rows for early stopping, clips
    gradients and recovers from divergence (:mod:`flowad.core.training`). The threshold comes from
    scores of rows the flow was neither fitted to nor stopped on (``calibration``). Less common
    settings are gathered in ``options`` (:class:`~flowad.models.tabular_flow.options.FlowOptions`);
    bagged ensembles and two-class training are their own estimators,
    :class:`~flowad.models.tabular_flow.ensemble.FlowEnsembleDetector` and
    :class:`~flowad.models.tabular_flow.two_class.TwoClassFlowDetector`.

    References:
        Papamakarios et al., "Normalizing Flows for Probabilistic Modeling and Inference",
        arXiv:1912.02762; the flow kinds are listed in :data:`flowad.flows.FLOW_KINDS`.

    Args:
        flow: ``"maf"``, ``"realnvp"`` or ``"nsf"``.
        transforms: Number of flow transforms (depth).
        hidden_features: Hidden widths of each transform's conditioner network.
        score_type: What ``score_samples`` returns, higher = more normal:
            ``"nll"``: log-likelihood of each row in nats (in the units of the input columns);
            ``"hybrid"``: the log-likelihood plus a k-nearest-neighbour log-density estimate,
            ``-d log r_5(x)`` with ``r_5`` the distance to the fifth nearest training row in the
            flow's ``d``-dimensional input space
            (:mod:`~flowad.models.tabular_flow.neighbours`): a row must be likely under the flow
            *and* near rows seen in training. The model keeps up to 10,000 training rows (scaled)
            as the reference, also in its model file;
            ``"latent_norm"``: ``-||z||^2`` of the latent code ``z``;
            ``"mahalanobis"``: minus the squared Mahalanobis distance of ``z`` from the mean and
            covariance of the training codes.
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from (:mod:`flowad.core.calibration`):
            ``"auto"`` (cross-fitting up to 20,000 rows, else a held-out split), ``"cross"`` or
            ``"split"``.
        noise_std: Standard deviation of Gaussian noise added to every standardised training row
            (noise regularisation: Rothfuss et al., "Noise Regularization for Conditional Density
            Estimation", arXiv:1907.08982); 0 for none.
        tail_bound: Standardised values (in robust spreads from the median) beyond ``+-tail_bound``
            are compressed before the flow, ``g(s) = sign(s) b (1 + log(1 + log(|s| / b)))``
            (:mod:`~flowad.core.preprocessing`); the map is exact and its log-derivative is part of
            the likelihood, so scores stay log-densities in the input's units and far rows stay far.
            A column whose few large values lie thousands of spreads out would otherwise overflow the
            first training steps. ``None``: no compression. Values within the bound are untouched.
        max_epochs: Upper bound on training epochs.
        learning_rate: Adam learning rate.
        options: Less common settings (batch size, early stopping, PCA step, threshold, ...);
            ``None``: the defaults of :class:`~flowad.models.tabular_flow.options.FlowOptions`.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        threads: PyTorch threads for fitting and scoring (the caller's setting is restored after);
            ``None``: one for networks narrower than 512 (more gain nothing on such small matrices
            and collapse when the cores are busy), PyTorch's default for wider ones.
        random_state: Seed for initialisation, the split, shuffling and noise; ``None`` for fresh
            randomness. The same seed gives identical results on CPU.

    Attributes:
        offset_: Threshold on ``score_samples``; rows below it are predicted anomalies.
        calibration_: The calibration scores behind ``offset_`` and the p-values.
        flow_: The trained flow (float64, on ``device_``).
        scoring_: The scoring graph (:class:`~flowad.models.tabular_flow.torch_model.FlowScoring`):
            every score and the ONNX export run it.
        scaler_: Learned preprocessing.
        projection_: The PCA step, or ``None`` when the flow sees every column.
        history_: Loss curves and divergence recoveries (of the first flow of an ensemble).
        n_rows_fitted_: Rows the preprocessing and the flow were fitted to: every training row, or
            on tables larger than the step budget can show, a uniform random subset
            (:func:`~flowad.models.tabular_flow.options.fit_rows_cap`); ``None`` for a model file
            written before flowad recorded it.
        member_epochs_: Epochs each flow trained for.
        latent_mean_: Shape ``(d,)``, mean latent code of the training rows.
        latent_precision_: Shape ``(d, d)``, inverse covariance of the training codes.
        n_features_in_: Number of input columns.

    Example:
        >>> import numpy as np
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> detector = FlowDetector(max_epochs=5, random_state=0).fit(X)
        >>> detector.score_samples(X[:3]).shape
        (3,)
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "flow": [StrOptions(set(FLOW_KINDS))],
        "transforms": [Interval(Integral, 1, None, closed="left")],
        "hidden_features": ["array-like"],
        "score_type": [StrOptions(set(SCORES))],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "tail_bound": [Interval(Real, 0, None, closed="neither"), None],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "options": [FlowOptions, None],
        "device": [str, torch.device],
        "threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        flow: str = "maf",
        *,
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

    # ------------------------------------------------- what the variants change
    @property
    def _opts(self) -> FlowOptions:
        return self.options if self.options is not None else FlowOptions()

    def _ensemble(self) -> tuple[int, str]:
        """``(number of flows, how they are pooled)``; one flow here."""
        return 1, "mixture"

    def _two_class(self) -> tuple[str | None, float | str | None, float]:
        """``(negatives, floor, weight)`` of two-class training; none here (one-class)."""
        return None, "auto", 1.0

    # ------------------------------------------------------------------ fit
    def _check_fit_params(self) -> None:
        if self._opts.threshold == "chi2" and self.score_type in ("nll", "hybrid"):
            raise ValueError(f"options.threshold='chi2' needs score_type='latent_norm' or 'mahalanobis', "
                             f"not {self.score_type!r}")

    def _uses_labels(self) -> bool:
        return self._two_class()[0] == "labels"

    def _labels_for_fit(self, y, n: int) -> np.ndarray:
        return check_negative_labels(y, n)

    def _analytic_threshold(self) -> bool:
        return self._opts.threshold == "chi2"

    def _analytic_offset(self, contamination: float) -> float:
        return -float(chi2.ppf(1.0 - contamination, df=self._latent_dimension()))

    def _analytic_p_values(self, scores: np.ndarray) -> np.ndarray:
        return chi2.sf(-scores, df=self._latent_dimension())

    def _threads(self) -> int | None:
        return resolve_threads(self.threads, max((*tuple(self.hidden_features), 1)))

    def _latent_dimension(self) -> int:
        return max(self.scaler_.n_model_features, 1)

    def fit(self, X, y=None, *, callback: EpochCallback | None = None, **kwargs) -> FlowDetector:
        """Fit the preprocessing and the flow, and calibrate the threshold.

        Args:
            X: Training rows, shape ``(N, D)``, finite numbers, at least 2 rows; or a DataFrame
                (see :meth:`flowad.core.estimator.BaseDetector.fit` for its keyword arguments).
            y: Ignored (present for scikit-learn compatibility); two-class training reads it
                (:class:`~flowad.models.tabular_flow.two_class.TwoClassFlowDetector`).
            callback: Called after each epoch with ``(epoch, train_loss, validation_loss)``.
            **kwargs: Table and progress options of :meth:`flowad.core.estimator.BaseDetector.fit`.

        Returns:
            ``self``.
        """
        return super().fit(X, y, callback=callback, **kwargs)

    def _fit_model(self, X: np.ndarray, labels: np.ndarray, callback: EpochCallback | None = None) -> None:
        device = resolve_device(self.device)
        rng = np.random.default_rng(agreed_random_state(self.random_state))  # one seed for all DDP ranks
        torch_seed = int(rng.integers(2**31 - 1))
        opts = self._opts
        cap = fit_rows_cap(opts)
        if cap is not None and len(X) > cap and not labels.any():  # rows the budget would never show
            keep = np.sort(rng.choice(len(X), cap, replace=False))
            X, labels = X[keep], labels[keep]
        self.n_rows_fitted_ = len(X)
        n_flows, combine = self._ensemble()
        negatives, negative_floor, negative_weight = self._two_class()

        scaler = TabularScaler.fit(X[labels == 0], dequantize=opts.dequantize, tail_bound=self.tail_bound)
        train_idx, val_idx = split_validation(len(X), opts.validation_fraction, rng, MIN_VALIDATION)
        if labels.any():  # every validation part needs normal rows; stratify
            train_idx, val_idx = stratified_validation(labels, opts.validation_fraction, rng)
        # n_flows=1: the held-out rows serve early stopping. n_flows>1 (bagging): they are held out
        # from every flow; each flow draws its own early-stopping split of the remaining rows, so the
        # flows see different data.
        members = [(seed, *_member_split(train_idx, val_idx, seed, n_flows, opts.validation_fraction))
                   for seed in _member_seeds(torch_seed, n_flows)]
        d = scaler.n_model_features
        k = self._n_components(len(members[0][1]), d)
        normal_train = train_idx[labels[train_idx] == 0]
        projection = PCAProjection.fit(scaler.transform(X[normal_train]), k) if 0 < k < d else None
        low, width = scaler.dequantization_bins(X)

        q = contamination_value(self.contamination)
        flows, histories = [], []
        for seed, fit_idx, stop_idx in members:
            with seeded_torch(seed):
                flow = self._build_flow(max(k, 1)).to(device)
                fit = FlowFit(flow, projection, low, width, device, seed, self._training_config(len(fit_idx)),
                              self.noise_std, opts.trim_fraction, negative_weight)
                history = TrainingHistory()
                if d > 0 and labels.any() and negative_floor == "auto":
                    # warm start on the normal rows; negatives then only need to fall below their low tail
                    train_flow(fit, normal_train, val_idx[labels[val_idx] == 0])
                    self.negative_floor_ = log_prob_quantile(fit, low[normal_train] + 0.5 * width[normal_train], q)
                    history = train_flow(fit, train_idx, val_idx, callback, labels, self.negative_floor_)
                elif d > 0 and negatives == "synthetic":
                    history, self.n_synthetic_negatives_, self.negative_floor_ = train_with_synthetic(
                        fit, train_idx, val_idx, callback, rng, negative_floor, q)
                elif d > 0:
                    history = train_flow(fit, fit_idx, stop_idx, callback, labels if labels.any() else None,
                                         negative_floor)
            if d > 0 and history.best_epoch < 0:
                advice = _extreme_input_advice(scaler, low, self.tail_bound)
                warn_if_untrained(history, "flow", self.learning_rate, advice)
            flows.append(flow.double().eval())
            histories.append(history)
        self.scaler_ = scaler
        self.projection_ = projection
        self.flow_ = flows[0] if n_flows == 1 else FlowMixture(flows, combine).eval()
        self.device_ = device
        self.scoring_ = FlowScoring(scaler, projection, self.flow_, self.score_type,
                                    network_dtype=network_dtype(opts)).to(device)
        self.history_ = histories[0]
        self.n_epochs_ = len(self.history_.train_loss)
        self.member_epochs_ = [len(h.train_loss) for h in histories]

        normal = np.flatnonzero(labels == 0)
        if self.score_type == "hybrid":
            kept = normal[reference_rows(len(normal), rng)]
            reference = torch.as_tensor(score_in_chunks(self.scoring_.model_inputs, X[kept], device))
            self.scoring_.neighbours = NeighbourDistance(reference).to(device)
        if n_flows == 1:
            if len(normal) > MOMENT_ROWS:  # a random subset estimates d-dimensional moments as well
                normal = np.sort(rng.choice(normal, MOMENT_ROWS, replace=False))
            self.latent_mean_, self.latent_precision_ = _latent_moments(self._latent(X[normal]))
        else:  # unused: a mixture has no latent code (fit rejects latent scores)
            self.latent_mean_, self.latent_precision_ = np.zeros(max(k, 1)), np.eye(max(k, 1))
        self.scoring_.set_latent_moments(self.latent_mean_, self.latent_precision_)
        self.calibrated_score_type_ = self.score_type

    def _check_threshold_applies(self) -> None:
        fitted = getattr(self, "calibrated_score_type_", self.score_type)
        if self.score_type != fitted:
            raise ValueError(f"score_type={self.score_type!r}: the threshold and p-values were set on "
                             f"{fitted!r} scores; set score_type back to {fitted!r} or refit")

    def _n_components(self, n_rows: int, d: int) -> int:
        return resolve_components(self._opts.pca_components, n_rows, d)

    def _build_flow(self, features: int) -> torch.nn.Module:
        return build_vector_flow(self.flow, features, self.transforms, tuple(self.hidden_features))

    def _build_model(self, features: int) -> torch.nn.Module:
        """The untrained module ``flow_`` holds: one flow, or a mixture of ``n_flows``."""
        n_flows, combine = self._ensemble()
        if n_flows == 1:
            return self._build_flow(features)
        return FlowMixture([self._build_flow(features) for _ in range(n_flows)], combine)

    def _training_config(self, n_rows: int) -> TrainingConfig:
        return self._opts.training_config(self.max_epochs, self.learning_rate, n_rows)

    # --------------------------------------------------------------- scores
    def _graph(self) -> FlowScoring:
        """The scoring graph, scoring by the current ``score_type`` (``score_samples`` and the ONNX
        export both run this)."""
        graph = self.scoring_
        if graph.score_type != self.score_type:  # set_params(score_type=...) after fit
            if self.score_type != "nll" and self._ensemble()[0] > 1:
                raise ValueError(f"score_type={self.score_type!r} needs a single flow (a mixture of flows "
                                 f"has no latent code); use 'nll'")
            graph.score_type = self.score_type
        if self.score_type == "hybrid" and graph.neighbours is None:
            raise ValueError("score_type='hybrid' needs the reference rows a fit with score_type='hybrid' keeps; "
                             "refit with score_type='hybrid'")
        if graph.network_dtype != network_dtype(self._opts):  # options replaced after fit
            graph = self.scoring_ = FlowScoring(self.scaler_, self.projection_, self.flow_, self.score_type,
                                                self.latent_mean_, self.latent_precision_,
                                                network_dtype(self._opts), graph.neighbours).to(self.device_)
        return graph

    def _run_graph(self, X: np.ndarray, method: str) -> np.ndarray:
        """One of the scoring graph's methods over rows ``X`` ``(N, D)``, in chunks (flat memory)."""
        graph = self._graph()
        function = graph if method == "forward" else getattr(graph, method)
        return score_in_chunks(function, X, self.device_)

    def _latent(self, X: np.ndarray) -> np.ndarray:
        return finite_scores(self._run_graph(X, "latent"))

    def log_likelihood(self, X) -> np.ndarray:
        """Log-density of each row in nats, in the units of the input columns; shape ``(N,)``.

        For an ensemble pooled with ``combine="geometric"`` it is the normalised pool's log-density
        plus a constant ``log Z <= 0``.

        Args:
            X: Shape ``(N, D)``, or a DataFrame with the model's feature columns.
        """
        X = self._score_input(X)
        with torch_threads(self._threads()):
            return self._run_graph(X, "log_likelihood")

    def latent_codes(self, X) -> np.ndarray:
        """Latent codes ``z`` of each row, shape ``(N, k)`` (``k``: the flow's input width).

        Args:
            X: Shape ``(N, D)``, or a DataFrame with the model's feature columns.

        Raises:
            ValueError: For an ensemble of flows, which has no latent code.
        """
        X = self._score_input(X)
        if self._ensemble()[0] > 1:
            raise ValueError("latent codes need a single flow (a mixture of flows has none)")
        with torch_threads(self._threads()):
            return self._latent(X)

    def score_samples(self, X) -> np.ndarray:
        """Normality score per row (see ``score_type``), shape ``(N,)``; higher means more normal.

        Rows are scored in chunks by the scoring graph (``scoring_``,
        :class:`~flowad.models.tabular_flow.torch_model.FlowScoring`), so memory does not grow with
        the number of rows, and ONNX exports give the same scores.

        Args:
            X: Shape ``(N, D)``, or a DataFrame with the model's feature columns.
        """
        return super().score_samples(X)

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        return self._run_graph(X, "forward")

    # ---------------------------------------------------------- model files
    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state["history_"] = asdict(self.history_)
        state["member_epochs_"] = list(self.member_epochs_)
        state["n_rows_fitted_"] = int(self.n_rows_fitted_)
        state["calibrated_score_type_"] = getattr(self, "calibrated_score_type_", self.score_type)
        arrays.update(prefixed("scaler", self.scaler_.to_arrays()))
        if self.projection_ is not None:
            arrays.update(prefixed("projection", self.projection_.to_arrays()))
        arrays.update(prefixed("flow", {k: v.detach().cpu().numpy() for k, v in self.flow_.state_dict().items()}))
        arrays["latent_mean"] = self.latent_mean_
        arrays["latent_precision"] = self.latent_precision_
        if self.scoring_.neighbours is not None:
            arrays["neighbour_reference"] = self.scoring_.neighbours.reference.cpu().numpy()
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.history_ = TrainingHistory.from_state(state["history_"])
        self.n_epochs_ = len(self.history_.train_loss)
        self.member_epochs_ = list(state.get("member_epochs_", [self.n_epochs_]))
        self.n_rows_fitted_ = state.get("n_rows_fitted_")  # None in files written before it was recorded
        self.calibrated_score_type_ = state.get("calibrated_score_type_", self.score_type)
        self.scaler_ = TabularScaler.from_arrays(unprefixed("scaler", arrays))
        projection = unprefixed("projection", arrays)
        self.projection_ = PCAProjection.from_arrays(projection) if projection else None
        self.device_ = resolve_device(self.device)
        width = self.projection_.n_components if self.projection_ is not None else self.scaler_.n_model_features
        self.flow_ = load_flow(lambda: self._build_model(max(width, 1)), unprefixed("flow", arrays), self.device_)
        self.latent_mean_ = arrays["latent_mean"]
        self.latent_precision_ = arrays["latent_precision"]
        reference = arrays.get("neighbour_reference")
        neighbours = None if reference is None else NeighbourDistance(torch.from_numpy(reference.astype(np.float64)))
        self.scoring_ = FlowScoring(self.scaler_, self.projection_, self.flow_, self.score_type, self.latent_mean_,
                                    self.latent_precision_, network_dtype(self._opts), neighbours).to(self.device_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


#: Training rows the latent moments (``score_type="mahalanobis"``) are estimated from at most.
MOMENT_ROWS = 100_000


def _member_seeds(first: int, n: int) -> list[int]:
    """Torch seeds of ``n`` flows: ``first``, then seeds derived from it. Flow ``k``'s seed does not
    depend on ``n``, so the first 3 flows of ``n_flows=5`` are those of ``n_flows=3``."""
    return [first] + [int(np.random.default_rng([first, k]).integers(2**31 - 1)) for k in range(1, n)]


def _member_split(
    train_idx: np.ndarray, val_idx: np.ndarray, seed: int, n_flows: int, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Rows one flow trains on and stops early on.

    One flow uses the detector's split as is. In a bagged ensemble (``n_flows > 1``) the rows
    ``val_idx`` stay untouched (they set the threshold) and flow ``seed`` splits ``train_idx`` anew,
    with its own seed: ``(fit rows, early-stopping rows)``, both subsets of ``train_idx``.
    """
    if n_flows == 1:
        return train_idx, val_idx
    fit, stop = split_validation(len(train_idx), fraction, np.random.default_rng([seed, 1]), MIN_VALIDATION)
    return train_idx[fit], train_idx[stop]


def _extreme_input_advice(scaler: TabularScaler, inputs: np.ndarray, tail_bound: float | None) -> str:
    """Where the flow's largest input lies, for the warning of a flow that never trained."""
    magnitude = np.abs(inputs).max(axis=0)
    j = int(np.argmax(magnitude))
    column = int(np.flatnonzero(scaler.varying)[j])
    tails = "tail_bound=None, no compression" if tail_bound is None else f"after compression beyond {tail_bound:g}"
    return (f"Its largest input is {magnitude[j]:.4g} robust spreads from the median, in column {column} "
            f"({tails}); for a column with extreme values, try a lower tail_bound (default 100) or a log "
            f"transform before fitting.")


def _latent_moments(codes: np.ndarray, bound: float = 1e6) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(k,)`` and pseudo-inverse covariance ``(k, k)`` of latent codes ``(N, k)``.

    Codes with a coordinate beyond ``bound`` (rows the flow sends to overflow, e.g. extreme outliers
    in the training data) are left out; without two usable rows the moments are the standard normal's.
    """
    k = codes.shape[1]
    usable = codes[np.abs(codes).max(axis=1) < bound] if len(codes) else codes
    if len(usable) < 2:
        return np.zeros(k), np.eye(k)
    cov = np.atleast_2d(np.cov(usable, rowvar=False))
    return usable.mean(axis=0), np.linalg.pinv(cov + 1e-9 * np.eye(k), hermitian=True)
