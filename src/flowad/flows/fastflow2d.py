"""FastFlow's 2D flow over a feature map (Yu et al., "FastFlow: Unsupervised Anomaly Detection and
Localization via 2D Normalizing Flows", arXiv:2111.07677).

A stack of affine couplings on the channels whose conv subnets alternate 3x3 and 1x1 kernels, each
followed by a fixed channel permutation. Every layer acts position by position on the channels
(the 3x3 subnets only *read* neighbours), so the log-density splits exactly into one term per
spatial position: the anomaly map.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowad.flows.layers2d import AffineCoupling2d, Bijection2d, ChannelPermutation

__all__ = ["FastFlow2d"]

_LOG_2PI = math.log(2 * math.pi)


class FastFlow2d(Bijection2d):
    """2D flow over feature maps ``(N, C, H, W)``.

    Args:
        channels: ``C`` (at least 2).
        steps: Number of couplings.
        hidden_ratio: Subnet width as a share of ``C``.
        clamp: Bound of the couplings' log-scales (FastFlow uses 2).
        conv3x3_only: Use 3x3 kernels in every subnet instead of alternating 3x3 and 1x1.
        random_state: Seed of the channel permutations.
    """

    def __init__(
        self,
        channels: int,
        steps: int = 8,
        hidden_ratio: float = 1.0,
        clamp: float = 2.0,
        conv3x3_only: bool = False,
        random_state: int | None = 0,
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        if hidden_ratio <= 0:
            raise ValueError(f"hidden_ratio must be positive, got {hidden_ratio}")
        generator = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        hidden = max(1, int(round(channels * hidden_ratio)))
        layers: list[Bijection2d] = []
        for step in range(steps):
            kernel = 3 if conv3x3_only or step % 2 == 0 else 1
            layers += [AffineCoupling2d(channels, hidden, kernel, clamp), ChannelPermutation(channels, generator)]
        self.layers = nn.ModuleList(layers)

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Code ``(N, C, H, W)`` and log-det per position ``(N, H, W)``."""
        ladj = x.new_zeros(x.shape[0], x.shape[2], x.shape[3])
        for layer in self.layers:
            x, term = layer.forward_map(x)
            ladj = ladj + term
        return x, ladj

    def inverse(self, y: Tensor) -> Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y

    def log_prob_map(self, x: Tensor) -> Tensor:
        """Log-density of each position's feature vector in nats, ``(N, C, H, W) -> (N, H, W)``;
        the sum over positions is the exact log-density of the whole map."""
        z, ladj = self.forward_map(x)
        return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * _LOG_2PI + ladj

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of each whole feature map, ``(N,)``."""
        return self.log_prob_map(x).flatten(1).sum(1)
