"""Held-out rows for early stopping: one fraction, one rule, for every model.

Example:
    >>> import numpy as np
    >>> fit_rows, held_out = holdout_split(100, np.random.default_rng(0))
    >>> len(fit_rows), len(held_out)
    (90, 10)
"""

from __future__ import annotations

import numpy as np

__all__ = ["HOLDOUT_FRACTION", "MIN_VALIDATION", "holdout_split", "split_validation"]

#: Share of the rows (or images, or patches) a model holds out for early stopping by default.
HOLDOUT_FRACTION = 0.1
#: Fewest rows tabular models hold out for validation (when the data have at least twice as many).
MIN_VALIDATION = 20


def split_validation(
    n: int, fraction: float, rng: np.random.Generator, min_validation: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Random train / validation row indices.

    Args:
        n: Number of rows.
        fraction: Share of rows held out, in [0, 1).
        rng: Source of the permutation.
        min_validation: Fewest held-out rows when ``n`` allows it.

    Returns:
        ``(train_idx, validation_idx)``; with fewer than 2 rows validation reuses the training rows.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction!r}")
    if n < 2 or fraction == 0.0:
        idx = np.arange(n)
        return idx, idx
    n_val = min(n // 2, max(min_validation, int(round(fraction * n))))
    n_val = max(n_val, 1)
    perm = rng.permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def holdout_split(n: int, rng: np.random.Generator, min_validation: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """:func:`split_validation` with the default share :data:`HOLDOUT_FRACTION`."""
    return split_validation(n, HOLDOUT_FRACTION, rng, min_validation)
