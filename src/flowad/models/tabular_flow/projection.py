"""A PCA step for high-dimensional inputs that keeps the density exact.

The top ``k`` principal components, whitened, go to the flow; the residual in the other
``d - k`` directions is modelled as isotropic Gaussian noise with the mean discarded variance, as in
probabilistic PCA (Tipping and Bishop, "Probabilistic Principal Component Analysis", JRSS-B 1999).
Because the rotation is orthonormal, ``log p(x) = log p_flow(u) - sum(log s_i) + log N(r; 0, sigma^2 I)``
is a proper density in all ``d`` dimensions, and anomalies that live in low-variance directions
(often the telling ones) still lower the score through the residual term.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PCAProjection", "choose_components"]


def choose_components(n_rows: int, n_features: int, max_components: int = 64, rows_per_dim: int = 10) -> int:
    """``"auto"`` rule: reduce only inputs that are wide or have very few rows per column.

    Data with at most ``max_components`` features and at least 2 rows per feature are kept whole
    (on small ADBench sets such as WDBC or wine, reducing cost ROC-AUC). Otherwise the data are
    reduced to ``min(max_components, n_rows // rows_per_dim)`` components, at least 2.

    Returns:
        Number of components ``k``; ``k == n_features`` means no reduction.
    """
    if n_features <= max_components and n_rows >= 2 * n_features:
        return n_features
    return int(min(n_features, max(2, min(max_components, n_rows // rows_per_dim))))


def resolve_components(setting: int | str | None, n_rows: int, n_features: int) -> int:
    """The flow's input width for ``FlowOptions.pca_components``: ``None`` (or no features) keeps
    every feature, ``"auto"`` follows :func:`choose_components`, an int is capped at ``n_features``."""
    if n_features == 0 or setting is None:
        return n_features
    if setting == "auto":
        return choose_components(n_rows, n_features)
    return min(int(setting), n_features)


@dataclass
class PCAProjection:
    """Whitened projection onto the top principal components, with a Gaussian residual.

    Attributes:
        mean: Shape ``(d,)``.
        components: Shape ``(d, k)``, orthonormal columns.
        scale: Shape ``(k,)``, standard deviation along each kept component.
        residual_var: Variance of the residual per discarded direction (0 when ``k == d``).
    """

    mean: np.ndarray
    components: np.ndarray
    scale: np.ndarray
    residual_var: float

    @classmethod
    def fit(cls, X: np.ndarray, k: int) -> PCAProjection:
        """Fit on rows ``X`` of shape ``(N, d)`` keeping ``k`` components."""
        n, d = X.shape
        mean = X.mean(axis=0)
        cov = np.cov(X - mean, rowvar=False).reshape(d, d) if n > 1 else np.eye(d)
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval = np.clip(eigval[order], 0.0, None)
        floor = 1e-9 * max(eigval.max(), 1e-12)
        kept = np.maximum(eigval[:k], floor)
        residual = float(eigval[k:].mean()) if k < d else 0.0
        if k < d:
            residual = max(residual, floor)
        return cls(mean=mean, components=eigvec[:, order[:k]], scale=np.sqrt(kept), residual_var=residual)

    @property
    def n_components(self) -> int:
        return self.components.shape[1]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Whitened component scores, ``(N, d)`` -> ``(N, k)``."""
        return ((X - self.mean) @ self.components) / self.scale

    def log_abs_det(self) -> float:
        """``log |det|`` of the whitening of the kept components."""
        return float(-np.log(self.scale).sum())

    def residual_sq(self, X: np.ndarray) -> np.ndarray:
        """Squared residual norm in units of the residual variance, shape ``(N,)`` (chi-square, ``d-k`` dof)."""
        if self.residual_var == 0.0:
            return np.zeros(len(X))
        centred = X - self.mean
        residual = centred - (centred @ self.components) @ self.components.T
        return (residual**2).sum(axis=1) / self.residual_var

    def residual_log_density(self, X: np.ndarray) -> np.ndarray:
        """Gaussian log-density of the residual, shape ``(N,)`` (0 when nothing is discarded)."""
        m = self.components.shape[0] - self.n_components
        if m == 0:
            return np.zeros(len(X))
        return -0.5 * self.residual_sq(X) - 0.5 * m * np.log(2 * np.pi * self.residual_var)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"mean": self.mean, "components": self.components, "scale": self.scale,
                "residual_var": np.array([self.residual_var])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> PCAProjection:
        return cls(mean=arrays["mean"], components=arrays["components"], scale=arrays["scale"],
                   residual_var=float(arrays["residual_var"][0]))
