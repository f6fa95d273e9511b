"""Classic detectors as thin adapters over scikit-learn, on the flowad contract.

Each adapter robust-standardises the columns (:class:`TabularScaler`, no dequantisation), fits
the scikit-learn estimator, and sets ``offset_`` to the ``contamination`` quantile of the training
scores (for LOF, of the training rows' own outlier factors, which exclude each row from its
neighbourhood). ``score_samples`` is the estimator's own, higher = more normal.

Model files store an adapter as its standardised training rows, its hyper-parameters (seed
included) and the scores of up to 64 training rows; loading refits the estimator, which is
deterministic, and refuses the model if the refit does not reproduce those scores exactly
(a different scikit-learn, say). This avoids pickle at the cost of a refit on load.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.covariance import EllipticEnvelope
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import LocalOutlierFactor
from sklearn.svm import OneClassSVM
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions

from flowad.detectors.base import BaseDetector, prefixed, quantile_offset, unprefixed
from flowad.detectors.preprocessing import TabularScaler
from flowad.io import register_model

__all__ = [
    "EllipticEnvelopeDetector",
    "IsolationForestDetector",
    "LOFDetector",
    "OneClassSVMDetector",
    "SklearnAdapter",
]


class SklearnAdapter(BaseDetector):
    """Base of the adapters: subclasses say which estimator to build from their parameters.

    Attributes:
        estimator_: The fitted scikit-learn estimator.
        scaler_: Learned standardisation.
        offset_: Threshold on ``score_samples``.
    """

    def _make_estimator(self, seed: int) -> BaseEstimator:  # pragma: no cover - abstract
        """A new estimator from the hyper-parameters; ``seed`` replaces ``random_state``."""
        raise NotImplementedError

    def _training_scores(self, estimator: BaseEstimator, Xs: np.ndarray) -> np.ndarray:
        return estimator.score_samples(Xs)


    def fit(self, X, y=None) -> SklearnAdapter:
        """Fit on training rows ``X`` of shape ``(N, D)``; ``y`` is ignored. Returns ``self``."""
        self._validate_params()
        X = self._validate_fit_input(X, min_samples=2)
        self.scaler_ = TabularScaler.fit(X, dequantize=False)
        # A concrete seed, so that the model file can be refitted identically.
        self.seed_ = int(check_random_state(getattr(self, "random_state", None)).randint(2**31 - 1))
        self._fit_standardized(self.scaler_.model_input(X))
        return self

    def _fit_standardized(self, Xs: np.ndarray) -> None:
        """Fit the estimator and the threshold on standardised rows (also used when loading)."""
        estimator = self._make_estimator(self.seed_).fit(Xs)
        self.estimator_ = estimator
        self._train_rows_ = Xs
        self.offset_ = quantile_offset(self._training_scores(estimator, Xs), self.contamination)

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state["seed_"] = self.seed_
        train = self._train_rows_
        arrays.update(prefixed("scaler", self.scaler_.to_arrays()))
        arrays["train"] = train
        arrays["fingerprint"] = np.asarray(self.estimator_.score_samples(train[:64]), dtype=np.float64)
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.scaler_ = TabularScaler.from_arrays(unprefixed("scaler", arrays))
        self.seed_ = int(state["seed_"])
        self._fit_standardized(arrays["train"])
        refit = np.asarray(self.estimator_.score_samples(arrays["train"][:64]), dtype=np.float64)
        if not np.allclose(refit, arrays["fingerprint"], rtol=1e-10, atol=1e-12):
            raise ValueError(
                f"cannot load {type(self).__name__}: refitting did not reproduce the saved scores "
                "(was it saved with another scikit-learn version?)"
            )
        self.offset_ = float(state["offset_"])

    def score_samples(self, X) -> np.ndarray:
        """The estimator's normality score per row, shape ``(N,)``; higher means more normal."""
        X = self._validate_score_input(X)
        return np.asarray(self.estimator_.score_samples(self.scaler_.model_input(X)), dtype=np.float64)


@register_model
class IsolationForestDetector(SklearnAdapter):
    """Isolation Forest (Liu, Ting and Zhou, ICDM 2008) over ``sklearn.ensemble.IsolationForest``.

    Args:
        n_estimators: Number of trees.
        max_samples: Rows drawn per tree (``"auto"``: min(256, N)).
        max_features: Share or number of columns per tree.
        contamination: ``"auto"`` (1%) or a float in (0, 0.5]; sets ``offset_``.
        random_state: Seed.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "max_samples": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left"),
                        Interval(Real, 0, 1, closed="right")],
        "max_features": [Interval(Integral, 1, None, closed="left"), Interval(Real, 0, 1, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, *, n_estimators: int = 100, max_samples="auto", max_features=1.0,
                 contamination="auto", random_state=None) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.contamination = contamination
        self.random_state = random_state

    def _make_estimator(self, seed: int) -> IsolationForest:
        return IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                               max_features=self.max_features, random_state=seed)


@register_model
class OneClassSVMDetector(SklearnAdapter):
    """One-Class SVM (Schoelkopf et al., Neural Computation 2001) over ``sklearn.svm.OneClassSVM``.

    Args:
        kernel: Kernel name (``"rbf"``, ``"poly"``, ``"sigmoid"``, ``"linear"``).
        nu: Upper bound on the share of training errors, in (0, 1].
        gamma: Kernel coefficient (``"scale"``, ``"auto"`` or a positive float).
        contamination: ``"auto"`` (1%) or a float in (0, 0.5]; sets ``offset_``.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "kernel": [StrOptions({"rbf", "poly", "sigmoid", "linear"})],
        "nu": [Interval(Real, 0, 1, closed="right")],
        "gamma": [StrOptions({"scale", "auto"}), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, kernel: str = "rbf", nu: float = 0.5, gamma="scale", contamination="auto") -> None:
        self.kernel = kernel
        self.nu = nu
        self.gamma = gamma
        self.contamination = contamination

    def _make_estimator(self, seed: int) -> OneClassSVM:
        return OneClassSVM(kernel=self.kernel, nu=self.nu, gamma=self.gamma)


@register_model
class EllipticEnvelopeDetector(SklearnAdapter):
    """Robust Gaussian fit (minimum covariance determinant; Rousseeuw and Van Driessen,
    Technometrics 1999) over ``sklearn.covariance.EllipticEnvelope``.

    Args:
        support_fraction: Share of rows in the MCD support (``None``: scikit-learn's default).
        contamination: ``"auto"`` (1%) or a float in (0, 0.5]; sets ``offset_``.
        random_state: Seed.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "support_fraction": [Interval(Real, 0, 1, closed="right"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, support_fraction=None, contamination="auto", random_state=None) -> None:
        self.support_fraction = support_fraction
        self.contamination = contamination
        self.random_state = random_state

    def _fit_standardized(self, Xs: np.ndarray) -> None:
        n, d = Xs.shape
        if n <= 2 * d:
            raise ValueError(
                f"EllipticEnvelopeDetector needs more than twice as many rows as columns to estimate a "
                f"robust covariance, got X with {n} rows and {d} non-constant columns"
            )
        super()._fit_standardized(Xs)

    def _make_estimator(self, seed: int) -> EllipticEnvelope:
        return EllipticEnvelope(support_fraction=self.support_fraction, random_state=seed)


@register_model
class LOFDetector(SklearnAdapter):
    """Local Outlier Factor (Breunig et al., SIGMOD 2000) in novelty mode over
    ``sklearn.neighbors.LocalOutlierFactor``.

    Args:
        n_neighbors: Neighbourhood size.
        metric: Distance metric.
        contamination: ``"auto"`` (1%) or a float in (0, 0.5]; sets ``offset_``.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [str],
    }

    def __init__(self, *, n_neighbors: int = 20, metric: str = "minkowski", contamination="auto") -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.contamination = contamination

    def _make_estimator(self, seed: int) -> LocalOutlierFactor:
        return LocalOutlierFactor(n_neighbors=self.n_neighbors, metric=self.metric, novelty=True)

    def _training_scores(self, estimator: LocalOutlierFactor, Xs: np.ndarray) -> np.ndarray:
        return estimator.negative_outlier_factor_
