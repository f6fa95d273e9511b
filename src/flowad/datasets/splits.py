"""Train/test splits of labelled data (1 = anomaly), one per evaluation protocol.

- ``oneclass``: fit on a random share of the normal rows only; test on the other normal rows plus
  every anomaly (the novelty-detection setting of most flow papers).
- ``unsupervised``: ADBench's setting (Han et al., "ADBench: Anomaly Detection Benchmark",
  arXiv:2206.09426): a stratified 70/30 split; the detector is fitted on the unlabelled training
  part, anomalies included.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PROTOCOLS", "oneclass_split", "split", "subsample", "unsupervised_indices", "unsupervised_split"]

PROTOCOLS = ("oneclass", "unsupervised")


def oneclass_split(
    X: np.ndarray, y: np.ndarray, train_fraction: float = 0.6, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit on a random share of the normals; test on the other normals plus every anomaly.

    Args:
        X: Shape ``(N, D)``.
        y: Shape ``(N,)``, 1 = anomaly.
        train_fraction: Share of the normal rows used for training, in (0, 1).
        random_state: Seed of the split.

    Returns:
        ``(X_train, X_test, y_test)``.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    rng = np.random.default_rng(random_state)
    normal = rng.permutation(np.flatnonzero(y == 0))
    train = np.sort(normal[: int(round(train_fraction * len(normal)))])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], X[test], y[test]


def unsupervised_split(
    X: np.ndarray, y: np.ndarray, train_fraction: float = 0.7, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split; the training part keeps its (unlabelled) anomalies.

    Returns:
        ``(X_train, X_test, y_test)``.
    """
    train, test = unsupervised_indices(y, train_fraction, random_state)
    return X[train], X[test], y[test]


def unsupervised_indices(
    y: np.ndarray, train_fraction: float = 0.7, random_state: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of :func:`unsupervised_split` (sorted), for callers that need
    the training rows' hidden labels."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction!r}")
    rng = np.random.default_rng(random_state)
    train = []
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == label))
        train.append(rows[: int(round(train_fraction * len(rows)))])
    train = np.sort(np.concatenate(train))
    return train, np.setdiff1d(np.arange(len(y)), train)


def split(protocol: str, X: np.ndarray, y: np.ndarray, random_state: int | None = 0):
    """The split of a named protocol (:data:`PROTOCOLS`) with its default train share."""
    if protocol == "oneclass":
        return oneclass_split(X, y, random_state=random_state)
    if protocol == "unsupervised":
        return unsupervised_split(X, y, random_state=random_state)
    raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")


def subsample(X: np.ndarray, y: np.ndarray, max_rows: int, random_state: int | None = 0):
    """At most ``max_rows`` rows, stratified by label (the anomaly share is kept); unchanged if smaller."""
    if len(y) <= max_rows:
        return X, y
    rng = np.random.default_rng(random_state)
    keep = []
    for label in (0, 1):
        rows = np.flatnonzero(y == label)
        k = max(1, int(round(max_rows * len(rows) / len(y)))) if len(rows) else 0
        keep.append(rng.choice(rows, size=min(k, len(rows)), replace=False))
    keep = np.sort(np.concatenate(keep))
    return X[keep], y[keep]
