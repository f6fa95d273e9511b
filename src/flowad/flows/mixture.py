"""An equal-weight mixture of vector flows: ``p(x) = (1/K) sum_k p_k(x)``.

K flows fitted to the same data from different random starts disagree most where data are
scarce, which is where anomalies live; averaging their *densities* (not their log-densities)
keeps the result an exact, normalised density (Lakshminarayanan et al., "Simple and Scalable
Predictive Uncertainty Estimation using Deep Ensembles", arXiv:1612.01474, for the ensemble idea).

A mixture has no single latent code, so it offers ``log_prob`` and ``sample`` but no
``transform``; latent-distance scores need one flow.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["FlowMixture"]


class FlowMixture(nn.Module):
    """Equal-weight mixture of ``K`` flows over the same ``features``-dimensional space.

    Calling the module gives a distribution, as calling a zuko flow does:
    ``mixture().log_prob(x)`` maps ``(N, features)`` to ``(N,)``.

    Args:
        members: The ``K >= 1`` flows (zuko flows, or modules with the same calling convention).
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("members must hold at least one flow")
        self.members = nn.ModuleList(members)

    def forward(self) -> _MixtureDistribution:
        return _MixtureDistribution([member() for member in self.members])


class _MixtureDistribution:
    """What ``FlowMixture()`` returns: the members' distributions, combined."""

    def __init__(self, components: list) -> None:
        self.components = components

    def log_prob(self, x: Tensor) -> Tensor:
        """``log((1/K) sum_k p_k(x))`` of rows ``x`` ``(N, features)``, shape ``(N,)``."""
        logs = torch.stack([c.log_prob(x) for c in self.components])
        return torch.logsumexp(logs, dim=0) - math.log(len(self.components))

    def sample(self, shape: tuple[int, ...] = ()) -> Tensor:
        """Draws of shape ``shape + (features,)``: a uniformly chosen member per draw."""
        n = math.prod(shape)
        counts = torch.bincount(torch.randint(len(self.components), (n,)), minlength=len(self.components))
        draws = torch.cat([c.sample((int(k),)) for c, k in zip(self.components, counts, strict=True)])
        return draws[torch.randperm(n)].reshape(*shape, -1)

    @property
    def transform(self):
        raise AttributeError("a mixture of flows has no single latent code; fit one flow (n_flows=1) "
                             "for latent scores, latent codes or latent sampling")
