"""Ensembles of vector flows: the mixture ``p(x) = (1/K) sum_k p_k(x)`` or the geometric pool.

K flows fitted to different subsets of the data (bagging: Breiman, "Bagging Predictors", Machine
Learning 1996) from different random starts disagree most where data are scarce, which is where
anomalies live. Averaging their *densities* keeps the result an exact, normalised density
(Lakshminarayanan et al., "Simple and Scalable Predictive Uncertainty Estimation using Deep
Ensembles", arXiv:1612.01474, for ensembles of networks).

The geometric pool ``log q(x) = (1/K) sum_k log p_k(x)`` (a logarithmic opinion pool, or
product of experts) is high only where *every* flow agrees. It is unnormalised: its normaliser
``Z = integral prod_k p_k^(1/K)`` is at most 1 (the geometric mean never exceeds the arithmetic
mean), so ``log q`` is the log-density of the normalised pool plus ``log Z <= 0`` and never exceeds
the mixture's log-density. Ranks and thresholds do not depend on ``Z``.

An ensemble has no single latent code, so it offers ``log_prob`` and ``sample`` but no
``transform``; latent-distance scores need one flow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FlowMixture"]


COMBINE = ("mixture", "geometric")


class FlowMixture(nn.Module):
    """Equal-weight ensemble of ``K`` flows over the same ``features``-dimensional space.

    Calling the module gives a distribution, as calling a zuko flow does:
    ``mixture().log_prob(x)`` maps ``(N, features)`` to ``(N,)``.

    Args:
        members: The ``K >= 1`` flows (zuko flows, or modules with the same calling convention).
        combine: ``"mixture"``: ``log((1/K) sum_k p_k(x))``, an exact normalised density.
            ``"geometric"``: ``(1/K) sum_k log p_k(x)``, unnormalised (see the module docstring);
            it cannot be sampled.
    """

    def __init__(self, members: Sequence[nn.Module], combine: str = "mixture") -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("members must hold at least one flow")
        if combine not in COMBINE:
            raise ValueError(f"combine must be one of {COMBINE}, got {combine!r}")
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self) -> _MixtureDistribution:
        return _MixtureDistribution([member() for member in self.members], self.combine)


class _MixtureDistribution:
    """What ``FlowMixture()`` returns: the members' distributions, combined."""

    def __init__(self, components: list, combine: str) -> None:
        self.components = components
        self.combine = combine

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of rows ``x`` ``(N, features)`` under the ensemble, shape ``(N,)``."""
        logs = torch.stack([c.log_prob(x) for c in self.components])
        if self.combine == "geometric":
            return logs.mean(dim=0)
        return torch.logsumexp(logs, dim=0) - math.log(len(self.components))

    def sample(self, shape: tuple[int, ...] = ()) -> Tensor:
        """Draws of shape ``shape + (features,)``: a uniformly chosen member per draw (mixture only)."""
        if self.combine != "mixture":
            raise NotImplementedError("a geometric pool of flows cannot be sampled exactly; use combine='mixture'")
        n = math.prod(shape)
        counts = torch.bincount(torch.randint(len(self.components), (n,)), minlength=len(self.components))
        draws = torch.cat([c.sample((int(k),)) for c, k in zip(self.components, counts, strict=True)])
        return draws[torch.randperm(n)].reshape(*shape, -1)

    @property
    def transform(self):
        raise AttributeError("a mixture of flows has no single latent code; fit one flow (n_flows=1) "
                             "for latent scores, latent codes or latent sampling")
