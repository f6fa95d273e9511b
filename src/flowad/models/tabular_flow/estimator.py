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
from flowad.core.model_files import check_module_shapes
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
from flowad.flows.mixture import COMBINE
from flowad.models.tabular_flow.projection import PCAProjection, choose_components
from flowad.models.tabular_flow.training import (
    FlowFit,
    log_prob_quantile,
    stratified_validation,
    train_flow,
    train_with_synthetic,
)

__all__ = ["FlowDetector"]

logger = logging.getLogger(__name__)

SCORES = ("nll", "latent_norm", "mahalanobis")


class FlowDetector(BaseDetector):
    """Anomaly detector built on a normalizing flow (MAF, RealNVP or neural-spline flow).

    The flow is fitted by maximum likelihood to (mostly) normal rows. Rows the flow finds unlikely,
    or whose latent codes lie far from the origin, are anomalies.

    Preprocessing is learned in ``fit`` (:class:`~flowad.core.preprocessing.TabularScaler`):
    robust standardisation, extreme values compressed (``tail_bound``), constant columns set aside,
    discrete columns dequantised.
    Training holds out ``validation_fraction`` of the rows for early stopping, clips gradients and
    recovers from divergence (see :mod:`flowad.core.training`). The threshold comes from
    scores of rows the flow was neither fitted to nor stopped on (``calibration``).

    References:
        Papamakarios et al., "Normalizing Flows for Probabilistic Modeling and Inference",
        arXiv:1912.02762; the flow kinds are listed in :data:`flowad.flows.FLOW_KINDS`.

    Args:
        flow: ``"maf"``, ``"realnvp"`` or ``"nsf"``.
        transforms: Number of flow transforms (depth).
        hidden_features: Hidden widths of each transform's conditioner network.
        n_flows: Number of flows in a bagged ensemble; the density is their equal-weight mixture
            (:class:`~flowad.flows.mixture.FlowMixture`), still exact and normalised. The held-out
            ``validation_fraction`` of the rows is kept from every flow; each flow splits the other
            rows anew into its own training and early-stopping parts and starts
            from its own initialisation, so the flows differ in the data they saw (flows fitted to
            the same split barely differ: docs/results/bench/flow_ensemble). Measured with 3 MAFs
            (the registry's ``"maf_ensemble"``, docs/results/bench): mean ROC-AUC +0.007 on ADBench's
            unsupervised protocol, -0.001 on the one-class protocol, at 2.7x the fit time.
            More flows cost proportionally more. Values above 1 need ``score_type="nll"`` and
            ``negatives=None``.
        combine: How ``n_flows > 1`` flows are pooled (:class:`~flowad.flows.mixture.FlowMixture`):
            ``"mixture"``: ``log((1/K) sum_k p_k(x))``, an exact normalised density, high where
            *any* flow puts mass; ``"geometric"``: ``(1/K) sum_k log p_k(x)``, high only where
            *every* flow does. The geometric pool is unnormalised: ``log_likelihood`` is then the
            normalised pool's log-density plus a constant ``log Z <= 0``, which shifts no rank or
            threshold.
        score_type: What ``score_samples`` returns, higher = more normal:
            ``"nll"``: log-likelihood of each row in nats (in the units of the input columns);
            ``"latent_norm"``: ``-||z||^2`` of the latent code ``z``;
            ``"mahalanobis"``: minus the squared Mahalanobis distance of ``z`` from the mean and
            covariance of the training codes.
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from (:mod:`flowad.core.calibration`):
            ``"auto"`` (cross-fitting up to 20,000 rows, else a held-out split), ``"cross"`` or
            ``"split"``.
        threshold: ``"conformal"``: ``offset_`` and the p-values come from the calibration scores;
            ``"chi2"``: the analytic cut ``-chi2.ppf(1 - contamination, d)`` for the latent scores
            (``||z||^2`` of a perfectly trained flow is chi-square with ``d`` degrees of freedom), with
            p-values ``chi2.sf(||z||^2, d)``; exact only for a perfect flow.
        dequantize: Add uniform noise over each value's bin to discrete columns while training.
        noise_std: Standard deviation of Gaussian noise added to every standardised training row
            (noise regularisation: Rothfuss et al., "Noise Regularization for Conditional Density
            Estimation", arXiv:1907.08982); 0 for none. The default 0.05 was chosen on eight
            ADBench sets (docs/results/bench) and is used unchanged everywhere.
        tail_bound: Standardised values (in robust spreads from the median) beyond ``+-tail_bound``
            are compressed before the flow, ``g(s) = sign(s) b (1 + log(1 + log(|s| / b)))``
            (:mod:`~flowad.core.preprocessing`); the map is exact and its log-derivative is part
            of the likelihood, so scores stay log-densities in the input's units and far rows stay
            far. A column whose few large values lie thousands of spreads out would otherwise
            overflow the first training steps (ADBench ALOI, 26,851 spreads: in 4 of 6 suite runs
            the flow never trained). ``None``: no compression. Values within the bound are untouched.
        pca_components: Reduce wide inputs before the flow (:mod:`~flowad.models.tabular_flow.projection`):
            the flow models the top components, the rest is a Gaussian residual, so the density
            stays exact. ``"auto"`` reduces only inputs with more than 64 columns or fewer than 2 rows
            per column (:func:`~flowad.models.tabular_flow.projection.choose_components`); an int fixes ``k``;
            ``None`` never reduces.
        negatives: ``None``: ``fit`` ignores ``y`` (one-class). ``"labels"``: ``fit(X, y)`` reads
            ``y == 1`` as negative rows (a known rare class, or synthetic anomalies) whose likelihood
            training lowers while it raises that of the normal rows (``y == 0``); see
            :mod:`~flowad.core.two_class`. Preprocessing and the threshold use normal rows only.
            ``"synthetic"``: ``y`` is ignored; after a one-class warm start the flow draws its own
            negatives (latent codes beyond the chi-square 0.99 quantile, one per ten training rows,
            mapped back through the inverse flow) and trains against them with the same loss.
        negative_floor: The floor ``c`` of the two-class loss. ``"auto"``: train one-class on the
            normal rows first, then set ``c`` to the ``contamination`` quantile of their
            log-likelihoods under that flow (``negative_floor_``, in the flow's input units) and go
            on with the two-class loss: negatives are pushed just below the normal rows' low tail,
            not towards minus infinity (with the batch bound alone, MAF training ran away: normal
            test rows got log-likelihoods of -1e5). A float: ``c`` in those units, no warm start.
            ``None``: only the batch's least likely normal row bounds the loss (the paper's rule).
        negative_weight: Weight of the negative term of the two-class loss (1: the paper's loss).
            Measured on ADBench satellite, cardio and thyroid with their labels (70/30 split):
            one-class 0.842 / 0.927 / 0.994 ROC-AUC, two-class 0.927 / 0.973 / 0.995.
        trim_fraction: For training data that contain anomalies: the share of each batch's least
            likely rows left out of the loss (trimmed likelihood; Neykov et al., "Robust fitting of
            mixtures using the trimmed likelihood estimator", CSDA 2007). 0 uses every row.
        max_epochs: Upper bound on training epochs.
        batch_size: Mini-batch size.
        learning_rate: Adam learning rate.
        weight_decay: Adam weight decay.
        validation_fraction: Share of rows held out for early stopping (with ``n_flows > 1``: held
            out from every flow, and again per flow for its own early stopping).
        validation_trim: Early stopping watches the mean validation loss without the
            ``validation_trim`` share of held-out rows the flow finds least likely (a trimmed mean;
            one-class training). With the plain mean (0), one held-out row far from every training
            row can dominate: its loss grows as the flow sharpens, and early stopping keeps the
            weights of an early epoch (ADBench fault: one row's loss of 3e4 nats kept a flow at its
            13th epoch of 200). The threshold still uses every held-out row.
        patience: Epochs without validation improvement before stopping.
        clip_grad_norm: Gradient-norm clipping bound.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        threads: PyTorch threads for fitting and scoring (the caller's setting is restored after);
            ``None``: one for networks narrower than 512 (more gain nothing on such small matrices
            and collapse when the cores are busy), PyTorch's default for wider ones.
        random_state: Seed for initialisation, the split, shuffling and noise; ``None`` for fresh
            randomness. The same seed gives identical results on CPU.

    Attributes:
        offset_: Threshold on ``score_samples``; rows below it are predicted anomalies.
        flow_: The trained flow (float64, on ``device_``).
        scaler_: Learned preprocessing.
        projection_: The PCA step, or ``None`` when the flow sees every column.
        history_: Loss curves and divergence recoveries (of the first flow when ``n_flows > 1``).
        member_epochs_: Epochs each of the ``n_flows`` flows trained for.
        latent_mean_: Shape ``(d,)``, mean latent code of the training rows.
        latent_precision_: Shape ``(d, d)``, inverse covariance of the training codes.
        n_features_in_: Number of input columns.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "flow": [StrOptions(set(FLOW_KINDS))],
        "transforms": [Interval(Integral, 1, None, closed="left")],
        "hidden_features": ["array-like"],
        "n_flows": [Interval(Integral, 1, None, closed="left")],
        "combine": [StrOptions(set(COMBINE))],
        "score_type": [StrOptions(set(SCORES))],
        "threshold": [StrOptions({"conformal", "chi2"})],
        "dequantize": ["boolean"],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "tail_bound": [Interval(Real, 0, None, closed="neither"), None],
        "pca_components": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"), None],
        "negatives": [StrOptions({"labels", "synthetic"}), None],
        "negative_floor": [StrOptions({"auto"}), Real, None],
        "negative_weight": [Interval(Real, 0, None, closed="left")],
        "trim_fraction": [Interval(Real, 0, 0.5, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "validation_trim": [Interval(Real, 0, 0.5, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "clip_grad_norm": [Interval(Real, 0, None, closed="neither")],
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
        n_flows: int = 1,
        combine: str = "mixture",
        score_type: str = "nll",
        contamination: float | str = "auto",
        calibration: str = "auto",
        threshold: str = "conformal",
        dequantize: bool = True,
        noise_std: float = 0.05,
        tail_bound: float | None = 100.0,
        pca_components: int | str | None = "auto",
        negatives: str | None = None,
        negative_floor: float | str | None = "auto",
        negative_weight: float = 1.0,
        trim_fraction: float = 0.0,
        max_epochs: int = 200,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        validation_fraction: float = 0.1,
        validation_trim: float = 0.05,
        patience: int = 20,
        clip_grad_norm: float = 5.0,
        device: str = "auto",
        threads: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.flow = flow
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.n_flows = n_flows
        self.combine = combine
        self.score_type = score_type
        self.contamination = contamination
        self.calibration = calibration
        self.threshold = threshold
        self.dequantize = dequantize
        self.noise_std = noise_std
        self.tail_bound = tail_bound
        self.pca_components = pca_components
        self.negatives = negatives
        self.negative_floor = negative_floor
        self.negative_weight = negative_weight
        self.trim_fraction = trim_fraction
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.validation_trim = validation_trim
        self.patience = patience
        self.clip_grad_norm = clip_grad_norm
        self.device = device
        self.threads = threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    def _check_fit_params(self) -> None:
        if self.threshold == "chi2" and self.score_type == "nll":
            raise ValueError("threshold='chi2' needs score_type='latent_norm' or 'mahalanobis', not 'nll'")
        if self.n_flows > 1 and self.score_type != "nll":
            raise ValueError(f"n_flows={self.n_flows} needs score_type='nll' (a mixture of flows has no single "
                             f"latent code), got score_type={self.score_type!r}")
        if self.n_flows > 1 and self.negatives is not None:
            raise ValueError(f"n_flows={self.n_flows} supports one-class training only (negatives=None), "
                             f"got negatives={self.negatives!r}")

    def _uses_labels(self) -> bool:
        return self.negatives == "labels"

    def _labels_for_fit(self, y, n: int) -> np.ndarray:
        return check_negative_labels(y, n)

    def _analytic_threshold(self) -> bool:
        return self.threshold == "chi2"

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
            y: With ``negatives="labels"``: shape ``(N,)``, 1 = negative row, 0 = normal row.
                Otherwise ignored (present for scikit-learn compatibility).
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

        scaler = TabularScaler.fit(X[labels == 0], dequantize=self.dequantize, tail_bound=self.tail_bound)
        train_idx, val_idx = split_validation(len(X), self.validation_fraction, rng, MIN_VALIDATION)
        if labels.any():  # every validation part needs normal rows; stratify
            train_idx, val_idx = stratified_validation(labels, self.validation_fraction, rng)
        # n_flows=1: the held-out rows serve early stopping. n_flows>1 (bagging): they are held out
        # from every flow; each flow draws its own early-stopping split of the remaining rows, so the
        # flows see different data.
        members = [(seed, *_member_split(train_idx, val_idx, seed, self.n_flows, self.validation_fraction))
                   for seed in _member_seeds(torch_seed, self.n_flows)]
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
                fit = FlowFit(flow, projection, low, width, device, seed, self._training_config(),
                              self.noise_std, self.trim_fraction, self.negative_weight)
                history = TrainingHistory()
                if d > 0 and labels.any() and self.negative_floor == "auto":
                    # warm start on the normal rows; negatives then only need to fall below their low tail
                    train_flow(fit, normal_train, val_idx[labels[val_idx] == 0])
                    self.negative_floor_ = log_prob_quantile(fit, low[normal_train] + 0.5 * width[normal_train], q)
                    history = train_flow(fit, train_idx, val_idx, callback, labels, self.negative_floor_)
                elif d > 0 and self.negatives == "synthetic":
                    history, self.n_synthetic_negatives_, self.negative_floor_ = train_with_synthetic(
                        fit, train_idx, val_idx, callback, rng, self.negative_floor, q)
                elif d > 0:
                    history = train_flow(fit, fit_idx, stop_idx, callback, labels if labels.any() else None,
                                         self.negative_floor)
            if d > 0 and history.best_epoch < 0:
                advice = _extreme_input_advice(scaler, low, self.tail_bound)
                warn_if_untrained(history, "flow", self.learning_rate, advice)
            flows.append(flow.double().eval())
            histories.append(history)
        self.scaler_ = scaler
        self.projection_ = projection
        self.flow_ = flows[0] if self.n_flows == 1 else FlowMixture(flows, self.combine).eval()
        self.device_ = device
        self.history_ = histories[0]
        self.n_epochs_ = len(self.history_.train_loss)
        self.member_epochs_ = [len(h.train_loss) for h in histories]

        if self.n_flows == 1:
            self.latent_mean_, self.latent_precision_ = _latent_moments(self._latent(X[labels == 0]))
        else:  # unused: a mixture has no latent code (fit rejects latent scores)
            self.latent_mean_, self.latent_precision_ = np.zeros(max(k, 1)), np.eye(max(k, 1))

    def _n_components(self, n_rows: int, d: int) -> int:
        if d == 0 or self.pca_components is None:
            return d
        if self.pca_components == "auto":
            return choose_components(n_rows, d)
        return min(int(self.pca_components), d)

    def _build_flow(self, features: int) -> torch.nn.Module:
        return build_vector_flow(self.flow, features, self.transforms, tuple(self.hidden_features))

    def _build_model(self, features: int) -> torch.nn.Module:
        """The untrained module ``flow_`` holds: one flow, or a mixture of ``n_flows``."""
        if self.n_flows == 1:
            return self._build_flow(features)
        return FlowMixture([self._build_flow(features) for _ in range(self.n_flows)], self.combine)

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            patience=self.patience,
            clip_grad_norm=self.clip_grad_norm,
            validation_trim=self.validation_trim,
        )

    # --------------------------------------------------------------- scores
    def _terms(self, X: np.ndarray) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """For rows ``X`` (N, D): the flow's input (N, k), the log-density the preprocessing adds
        (N,), and the residual's squared whitened norm (N,)."""
        Xs = self.scaler_.model_input(X)
        extra = self.scaler_.log_abs_det(X) + self.scaler_.constant_log_density(X)
        residual = np.zeros(len(X))
        if self.projection_ is not None:
            extra = extra + self.projection_.log_abs_det() + self.projection_.residual_log_density(Xs)
            residual = self.projection_.residual_sq(Xs)
            Xs = self.projection_.transform(Xs)
        return torch.as_tensor(Xs, dtype=torch.float64, device=self.device_), extra, residual

    def _latent(self, X: np.ndarray) -> np.ndarray:
        codes = []
        for chunk in _chunks(X):
            with torch.no_grad():
                codes.append(self.flow_().transform(self._terms(chunk)[0]).cpu().numpy())
        return finite_scores(np.concatenate(codes))

    def log_likelihood(self, X) -> np.ndarray:
        """Log-density of each row in nats, in the units of the input columns; shape ``(N,)``.

        With ``n_flows > 1`` and ``combine="geometric"`` it is the normalised pool's log-density
        plus a constant ``log Z <= 0`` (see ``combine``).

        Args:
            X: Shape ``(N, D)``.
        """
        X = self._score_input(X)
        with torch_threads(self._threads()):
            return np.concatenate([self._chunk_scores(chunk, "nll") for chunk in _chunks(X)])

    def latent_codes(self, X) -> np.ndarray:
        """Latent codes ``z`` of each row, shape ``(N, k)`` (``k``: the flow's input width).

        Args:
            X: Shape ``(N, D)``.

        Raises:
            ValueError: If the detector is a mixture (``n_flows > 1``), which has no latent code.
        """
        X = self._score_input(X)
        if self.n_flows > 1:
            raise ValueError(f"latent codes need n_flows=1 (a mixture of flows has none), got n_flows={self.n_flows}")
        with torch_threads(self._threads()):
            return self._latent(X)

    def score_samples(self, X) -> np.ndarray:
        """Normality score per row (see ``score_type``), shape ``(N,)``; higher means more normal.

        Rows are scored in chunks, so memory does not grow with the number of rows.

        Args:
            X: Shape ``(N, D)``, or a DataFrame with the model's feature columns.
        """
        return super().score_samples(X)

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        return np.concatenate([self._chunk_scores(chunk, self.score_type) for chunk in _chunks(X)])

    def _chunk_scores(self, X: np.ndarray, score_type: str) -> np.ndarray:
        inputs, extra, residual = self._terms(X)
        with torch.no_grad():
            if score_type == "nll":
                logp = self.flow_().log_prob(inputs).cpu().numpy()
                if self.scaler_.n_model_features == 0:
                    logp = np.zeros(len(X))
                return finite_scores(logp + extra)
            z = self.flow_().transform(inputs).cpu().numpy()
        if score_type == "latent_norm":
            return finite_scores(-(z**2).sum(axis=1) - residual)
        centred = z - self.latent_mean_
        return finite_scores(-np.einsum("ij,jk,ik->i", centred, self.latent_precision_, centred) - residual)

    # ---------------------------------------------------------- model files
    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state["history_"] = asdict(self.history_)
        state["member_epochs_"] = list(self.member_epochs_)
        arrays.update(prefixed("scaler", self.scaler_.to_arrays()))
        if self.projection_ is not None:
            arrays.update(prefixed("projection", self.projection_.to_arrays()))
        arrays.update(prefixed("flow", {k: v.detach().cpu().numpy() for k, v in self.flow_.state_dict().items()}))
        arrays["latent_mean"] = self.latent_mean_
        arrays["latent_precision"] = self.latent_precision_
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        history = {k: v for k, v in state["history_"].items()}
        history["train_loss"] = [np.nan if v is None else v for v in history["train_loss"]]
        history["validation_loss"] = [np.nan if v is None else v for v in history["validation_loss"]]
        if history["best_validation_loss"] is None:
            history["best_validation_loss"] = np.inf
        self.history_ = TrainingHistory(**history)
        self.n_epochs_ = len(self.history_.train_loss)
        self.member_epochs_ = list(state.get("member_epochs_", [self.n_epochs_]))
        self.scaler_ = TabularScaler.from_arrays(unprefixed("scaler", arrays))
        projection = unprefixed("projection", arrays)
        self.projection_ = PCAProjection.from_arrays(projection) if projection else None
        self.device_ = resolve_device(self.device)
        width = self.projection_.n_components if self.projection_ is not None else self.scaler_.n_model_features
        weights = unprefixed("flow", arrays)
        check_module_shapes(lambda: self._build_model(max(width, 1)), weights, "flow")
        flow = self._build_model(max(width, 1)).double()
        flow.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        self.flow_ = flow.to(self.device_).eval()
        self.latent_mean_ = arrays["latent_mean"]
        self.latent_precision_ = arrays["latent_precision"]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags


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


def _chunks(X: np.ndarray, size: int = 65_536):
    """Consecutive row blocks of ``X`` (views, no copies); one empty block for empty ``X``."""
    if len(X) == 0:
        yield X
    for start in range(0, len(X), size):
        yield X[start : start + size]
