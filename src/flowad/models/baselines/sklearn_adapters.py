"""Classic detectors as thin adapters over scikit-learn, on the flowad contract.

Each adapter robust-standardises the columns (:class:`TabularScaler`: no dequantisation, values
beyond 100 robust spreads compressed, so that one extreme value cannot overflow the estimator) and
fits the scikit-learn estimator; ``score_samples`` is the estimator's own, higher = more normal.
The threshold and p-values come from out-of-fold or held-out scores like every flowad detector's
(:mod:`flowad.core.calibration`).

Model files store an adapter as its standardised training rows, its hyper-parameters (seed
included), its calibration scores and the scores of up to 64 training rows; loading refits the
estimator, which is deterministic, and refuses the model if the refit does not reproduce those
scores exactly (a different scikit-learn, say). This avoids pickle at the cost of a refit on load.
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

from flowad.core.estimator import BaseDetector, prefixed, unprefixed
from flowad.core.preprocessing import TabularScaler

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

    #: Standardised values beyond this many robust spreads are compressed (see TabularScaler).
    tail_bound = 100.0

    def _make_estimator(self, seed: int) -> BaseEstimator:  # pragma: no cover - abstract
        """A new estimator from the hyper-parameters; ``seed`` replaces ``random_state``."""
        raise NotImplementedError

    def _fit_model(self, X: np.ndarray, labels: np.ndarray, callback=None) -> None:
        self.scaler_ = TabularScaler.fit(X, dequantize=False, tail_bound=self.tail_bound)
        # A concrete seed, so that the model file can be refitted identically.
        self.seed_ = int(check_random_state(getattr(self, "random_state", None)).randint(2**31 - 1))
        self._fit_standardized(self.scaler_.model_input(X))

    def _fit_standardized(self, Xs: np.ndarray) -> None:
        """Fit the estimator on standardised rows (also used when loading)."""
        self.estimator_ = self._make_estimator(self.seed_).fit(Xs)
        self._train_rows_ = Xs

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.estimator_.score_samples(self.scaler_.model_input(X)), dtype=np.float64)

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
        if not np.allclose(refit, arrays["fingerprint"], rtol=1e-10, atol=1e-12, equal_nan=True):
            raise ValueError(
                f"cannot load {type(self).__name__}: refitting did not reproduce the saved scores "
                "(was it saved with another scikit-learn version?)"
            )


class IsolationForestDetector(SklearnAdapter):
    """Isolation Forest (Liu, Ting and Zhou, ICDM 2008) over ``sklearn.ensemble.IsolationForest``.

    Args:
        n_estimators: Number of trees.
        max_samples: Rows drawn per tree (``"auto"``: min(256, N)).
        max_features: Share or number of columns per tree.
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from: ``"auto"``, ``"cross"`` or ``"split"``
            (:mod:`flowad.core.calibration`).
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
                 contamination="auto", calibration="auto", random_state=None) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.max_features = max_features
        self.contamination = contamination
        self.calibration = calibration
        self.random_state = random_state

    def _make_estimator(self, seed: int) -> IsolationForest:
        return IsolationForest(n_estimators=self.n_estimators, max_samples=self.max_samples,
                               max_features=self.max_features, random_state=seed)


class OneClassSVMDetector(SklearnAdapter):
    """One-Class SVM (Schoelkopf et al., Neural Computation 2001) over ``sklearn.svm.OneClassSVM``.

    Args:
        kernel: Kernel name (``"rbf"``, ``"poly"``, ``"sigmoid"``, ``"linear"``).
        nu: Upper bound on the share of training errors, in (0, 1].
        gamma: Kernel coefficient (``"scale"``, ``"auto"`` or a positive float).
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from: ``"auto"``, ``"cross"`` or ``"split"``
            (:mod:`flowad.core.calibration`).
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "kernel": [StrOptions({"rbf", "poly", "sigmoid", "linear"})],
        "nu": [Interval(Real, 0, 1, closed="right")],
        "gamma": [StrOptions({"scale", "auto"}), Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, kernel: str = "rbf", nu: float = 0.5, gamma="scale", contamination="auto",
                 calibration="auto") -> None:
        self.kernel = kernel
        self.nu = nu
        self.gamma = gamma
        self.contamination = contamination
        self.calibration = calibration

    def _make_estimator(self, seed: int) -> OneClassSVM:
        return OneClassSVM(kernel=self.kernel, nu=self.nu, gamma=self.gamma)

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        # libsvm's dual coefficients sum to nu * n_rows: per training row, scores of models fitted
        # on different numbers of rows (the calibration folds, the final model) are comparable
        return super()._model_scores(X) / len(self._train_rows_)

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        if state.get("raw_libsvm_offset_"):  # a flowad 0.1 file: its threshold is on libsvm's scale
            self.offset_ /= len(self._train_rows_)


class EllipticEnvelopeDetector(SklearnAdapter):
    """Robust Gaussian fit (minimum covariance determinant; Rousseeuw and Van Driessen,
    Technometrics 1999) over ``sklearn.covariance.EllipticEnvelope``.

    Args:
        support_fraction: Share of rows in the MCD support (``None``: scikit-learn's default).
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from: ``"auto"``, ``"cross"`` or ``"split"``
            (:mod:`flowad.core.calibration`).
        random_state: Seed.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "support_fraction": [Interval(Real, 0, 1, closed="right"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, *, support_fraction=None, contamination="auto", calibration="auto", random_state=None) -> None:
        self.support_fraction = support_fraction
        self.contamination = contamination
        self.calibration = calibration
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


class LOFDetector(SklearnAdapter):
    """Local Outlier Factor (Breunig et al., SIGMOD 2000) in novelty mode over
    ``sklearn.neighbors.LocalOutlierFactor``.

    Args:
        n_neighbors: Neighbourhood size.
        metric: Distance metric.
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: Where the threshold's scores come from: ``"auto"``, ``"cross"`` or ``"split"``
            (:mod:`flowad.core.calibration`).
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "metric": [str],
    }

    def __init__(self, *, n_neighbors: int = 20, metric: str = "minkowski", contamination="auto",
                 calibration="auto") -> None:
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.contamination = contamination
        self.calibration = calibration

    def _make_estimator(self, seed: int) -> LocalOutlierFactor:
        return LocalOutlierFactor(n_neighbors=self.n_neighbors, metric=self.metric, novelty=True)
