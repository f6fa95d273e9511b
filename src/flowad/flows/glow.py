"""Glow: a multi-scale flow on images (Kingma & Dhariwal, "Glow: Generative Flow with Invertible
1x1 Convolutions", arXiv:1807.03039).

Each level squeezes space into channels and applies ``steps`` of (ActNorm, invertible 1x1
convolution, affine coupling); every level but the last then splits off half of the channels.
The split half gets a Gaussian whose mean and scale are predicted from the kept half (Glow's
learned prior), written here as one more affine bijection, so the whole model maps an image
``(N, C, H, W)`` to a standard-normal code of the same size and ``log_prob`` is exact.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from flowad.flows.layers2d import ActNorm2d, AffineCoupling2d, Bijection2d, InvConv2dLU, Squeeze2d

__all__ = ["Glow", "SplitPrior"]

_LOG_2PI = math.log(2 * math.pi)


class SplitPrior(Bijection2d):
    """Glow's split: ``(h, z) -> (h, (z - mu(h)) * exp(-log_sigma(h)))``, both halves ``C/2`` channels;
    ``log_sigma`` is soft-clamped to ``(-clamp, clamp)`` like the couplings' scales.

    Args:
        channels: ``C`` of the input (even).
        clamp: Bound of ``|log_sigma|``.
    """

    def __init__(self, channels: int, clamp: float = 4.0) -> None:
        super().__init__()
        self.clamp = clamp
        self.half = channels // 2
        self.net = nn.Conv2d(self.half, 2 * (channels - self.half), 3, padding=1)
        nn.init.zeros_(self.net.weight)
        nn.init.zeros_(self.net.bias)

    def _params(self, h: Tensor) -> tuple[Tensor, Tensor]:
        mu, raw = self.net(h).chunk(2, dim=1)
        return mu, self.clamp * torch.tanh(raw / self.clamp)

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Output and log-det per position ``(N, H, W)`` (they add up to ``forward``'s per-sample one)."""
        h, z = x[:, : self.half], x[:, self.half :]
        mu, log_sigma = self._params(h)
        return torch.cat([h, (z - mu) * torch.exp(-log_sigma)], 1), -log_sigma.sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        h, eps = y[:, : self.half], y[:, self.half :]
        mu, log_sigma = self._params(h)
        return torch.cat([h, eps * torch.exp(log_sigma) + mu], 1)


class Glow(nn.Module):
    """Multi-scale Glow over images of shape ``(N, C, H, W)``, H and W divisible by ``2**levels``.

    Args:
        in_channels: ``C`` (1 for grey, 3 for colour).
        levels: Number of squeeze levels.
        steps: Flow steps per level.
        hidden_channels: Width of every coupling's conv net.
        clamp: Bound of the couplings' log-scales.
        random_state: Seed of the 1x1 convolutions' orthogonal initialisation.
    """

    def __init__(
        self,
        in_channels: int = 1,
        levels: int = 2,
        steps: int = 4,
        hidden_channels: int = 64,
        clamp: float = 2.0,
        random_state: int | None = 0,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        if levels < 1 or steps < 1:
            raise ValueError(f"levels and steps must be at least 1, got levels={levels}, steps={steps}")
        generator = torch.Generator().manual_seed(0 if random_state is None else int(random_state))
        self.levels = levels
        self.blocks = nn.ModuleList()
        channels = in_channels
        for level in range(levels):
            channels *= 4
            layers: list[Bijection2d] = [Squeeze2d()]
            for _ in range(steps):
                layers += [
                    ActNorm2d(channels),
                    InvConv2dLU(channels, generator),
                    AffineCoupling2d(channels, hidden_channels, kernel_size=3, clamp=clamp),
                ]
            if level < levels - 1:
                layers.append(SplitPrior(channels))
            self.blocks.append(nn.ModuleList(layers))
            if level < levels - 1:
                channels //= 2

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Code and log-det: ``(N, C, H, W) -> ((N, C*H*W), (N,))``."""
        factor = 2**self.levels
        if x.dim() != 4 or x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"Glow with {self.levels} levels needs (N, C, H, W) with H, W divisible by "
                             f"{factor}, got {tuple(x.shape)}")
        ladj = x.new_zeros(x.shape[0])
        codes = []
        h = x
        for index, layers in enumerate(self.blocks):
            for layer in layers:
                h, term = layer(h)
                ladj = ladj + term
            if index < self.levels - 1:
                half = h.shape[1] // 2
                codes.append(h[:, half:].flatten(1))
                h = h[:, :half]
        codes.append(h.flatten(1))
        return torch.cat(codes, 1), ladj

    def inverse(self, z: Tensor, shape: tuple[int, int, int]) -> Tensor:
        """Image ``(N, C, H, W)`` from codes ``(N, C*H*W)``; ``shape`` is ``(C, H, W)``."""
        c, h, w = shape
        shapes = []
        for index in range(self.levels):
            c, h, w = 4 * c, h // 2, w // 2
            if index < self.levels - 1:
                shapes.append((c - c // 2, h, w))
                c = c // 2
        shapes.append((c, h, w))
        sizes = [math.prod(s) for s in shapes]
        parts = list(torch.split(z, sizes, dim=1))
        x = parts[-1].reshape(len(z), *shapes[-1])
        for index in reversed(range(self.levels)):
            if index < self.levels - 1:
                x = torch.cat([x, parts[index].reshape(len(z), *shapes[index])], 1)
            for layer in reversed(self.blocks[index]):
                x = layer.inverse(x)
        return x

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density in nats per image, ``(N, C, H, W) -> (N,)``."""
        z, ladj = self(x)
        return -0.5 * (z**2).sum(1) - 0.5 * z.shape[1] * _LOG_2PI + ladj

    @torch.no_grad()
    def sample(self, n: int, shape: tuple[int, int, int], temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """``n`` images of ``shape`` ``(C, H, W)`` from codes with standard deviation ``temperature``."""
        param = next(self.parameters())
        z = torch.randn(n, math.prod(shape), generator=generator, dtype=param.dtype) * temperature
        return self.inverse(z.to(param.device), shape)
