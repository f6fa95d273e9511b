"""A k-nearest-neighbour density estimate over the flow's inputs, for ``score_type="hybrid"``.

With ``r_k(x)`` the distance from ``x`` to its ``k``-th nearest reference row in ``d`` dimensions,
``-d log r_k(x)`` is, up to a constant, the log of the k-NN density estimate (Loftsgaarden &
Quesenberry, "A Nonparametric Estimate of a Multivariate Density Function", Ann. Math. Statist.
1965). The hybrid score adds it to the flow's log-likelihood: the product of the two density
estimates, so a row must be both likely under the flow and close to rows seen in training.

Distances are computed in blocks of reference rows with a running top-``k``, so memory stays at
``(rows, BLOCK_ROWS)`` whatever the number of reference rows.

Example:
    >>> import torch
    >>> reference = torch.tensor([[0.0], [1.0], [2.0], [10.0]], dtype=torch.float64)
    >>> knn = NeighbourDistance(reference, k=2)
    >>> knn(torch.tensor([[0.0], [20.0]], dtype=torch.float64)).exp().round(decimals=6).tolist()
    [1.0, 18.0]
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["DISTANCE_FLOOR", "K_NEIGHBOURS", "REFERENCE_ROWS", "NeighbourDistance", "reference_rows"]

#: Neighbours: the distance to the fifth nearest reference row.
K_NEIGHBOURS = 5
#: Reference rows kept at most (a random subset of larger training sets): bounds the model file and
#: the scoring cost (``REFERENCE_ROWS * d`` multiply-adds per row).
REFERENCE_ROWS = 10_000
#: Distances below this (in robust spreads) count as this: the estimate is unbounded at a repeated row.
DISTANCE_FLOOR = 1e-6
#: Reference rows per distance block: a block of 8,192 query rows (one scoring chunk) is 64 MB of
#: float64. The size does not depend on the queries, so an exported graph holds the same blocks.
BLOCK_ROWS = 1024


def reference_rows(n_rows: int, rng: np.random.Generator, limit: int | None = None) -> np.ndarray:
    """Sorted indices of the rows kept as the reference: all of ``n_rows``, or ``limit`` at random
    (default :data:`REFERENCE_ROWS`)."""
    limit = REFERENCE_ROWS if limit is None else int(limit)
    if n_rows <= limit:
        return np.arange(n_rows)
    return np.sort(rng.choice(n_rows, limit, replace=False))


class NeighbourDistance(nn.Module):
    """Rows ``(N, d)`` -> ``log r_k`` ``(N,)``, the log distance to the ``k``-th nearest reference row.

    Args:
        reference: Reference rows ``(M, d)``, in the space the queries come in.
        k: Which neighbour (``min(k, M)`` when there are fewer reference rows).
    """

    def __init__(self, reference: Tensor, k: int = K_NEIGHBOURS) -> None:
        super().__init__()
        if reference.ndim != 2 or len(reference) == 0:
            raise ValueError(f"reference must be a non-empty (M, d) array, got shape {tuple(reference.shape)}")
        self.k = int(min(k, len(reference)))
        self.register_buffer("reference", reference.to(torch.float64))
        self.register_buffer("reference_sq", (self.reference * self.reference).sum(1))

    def forward(self, x: Tensor) -> Tensor:
        r2 = self.squared_distances(x)[:, -1].clamp(min=DISTANCE_FLOOR**2)
        return 0.5 * r2.log()

    def squared_distances(self, x: Tensor) -> Tensor:
        """Squared distances ``(N, k)`` float64 of rows ``x`` ``(N, d)`` to their ``k`` nearest
        reference rows, ascending (rounding may leave tiny negatives at a repeated row)."""
        x = x.to(torch.float64)
        nearest = None
        for start in range(0, len(self.reference), BLOCK_ROWS):
            ref = self.reference[start : start + BLOCK_ROWS]
            # |r|^2 - 2 x.r: the squared distance less |x|^2, which is the same for every r of a row
            partial = torch.addmm(self.reference_sq[start : start + BLOCK_ROWS], x, ref.T, alpha=-2.0)
            block = torch.topk(partial, min(self.k, partial.shape[1]), dim=1, largest=False).values
            if nearest is not None:
                block = torch.topk(torch.cat([nearest, block], dim=1), self.k, dim=1, largest=False).values
            nearest = block
        return nearest + (x * x).sum(1, keepdim=True)

    def extra_repr(self) -> str:
        return f"reference={tuple(self.reference.shape)}, k={self.k}, floor={DISTANCE_FLOOR:g}"
