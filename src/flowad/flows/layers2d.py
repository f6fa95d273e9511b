"""Invertible layers on image-shaped tensors ``(N, C, H, W)``.

Every layer follows one interface, the one zuko's vector transforms follow: ``forward(x)`` returns
the output and the log-absolute-determinant of the Jacobian per sample, shape ``(N,)``, and
``inverse(y)`` undoes it exactly. Layers from Glow (Kingma & Dhariwal, "Glow: Generative Flow with
Invertible 1x1 Convolutions", arXiv:1807.03039) and RealNVP's squeeze (Dinh et al., "Density
estimation using Real NVP", arXiv:1605.08803).

``forward_map`` (where a layer has it) returns the log-det per spatial position, shape
``(N, H, W)``, instead of per sample: FastFlow-style heatmaps need it. It exists only for layers
that act position by position on the channels (``ActNorm2d``, ``InvConv2dLU``, ``AffineCoupling2d``,
``ChannelPermutation``), so that the per-position terms add up to the per-sample one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "ActNorm2d",
    "AffineCoupling2d",
    "Bijection2d",
    "ChannelPermutation",
    "InvConv2dLU",
    "Squeeze2d",
    "coupling_subnet",
]


class Bijection2d(nn.Module):
    """Base class: ``forward(x) -> (y, ladj)`` with ``ladj`` of shape ``(N,)``; ``inverse(y) -> x``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y, ladj_map = self.forward_map(x)
        return y, ladj_map.flatten(1).sum(1)

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Output and log-det per position ``(N, H, W)`` (position-wise layers only)."""
        raise NotImplementedError(f"{type(self).__name__} mixes positions; it has no per-position log-det")

    def inverse(self, y: Tensor) -> Tensor:
        raise NotImplementedError


class ActNorm2d(Bijection2d):
    """Per-channel affine map ``y = (x - bias) * exp(log_scale)``, initialised from the first batch
    so that its output has zero mean and unit variance per channel (Glow, section 3.1).

    Args:
        channels: ``C``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def _initialize(self, x: Tensor) -> None:
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True) if x.numel() // x.shape[1] > 1 else torch.ones_like(mean)
        self.bias.copy_(mean)
        self.log_scale.copy_(-torch.log(std.clamp_min(1e-6)))
        self.initialized.fill_(True)

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self._initialize(x)
        y = (x - self.bias) * torch.exp(self.log_scale)
        ladj = self.log_scale.sum().expand(x.shape[0], x.shape[2], x.shape[3])
        return y, ladj

    def inverse(self, y: Tensor) -> Tensor:
        return y * torch.exp(-self.log_scale) + self.bias


class InvConv2dLU(Bijection2d):
    """Invertible 1x1 convolution ``W = P L (U + diag(sign * exp(log_s)))`` in LU form, so that
    ``log|det W| = sum(log_s)`` costs ``O(C)`` (Glow, section 3.2).

    Args:
        channels: ``C``.
        generator: Draws the random orthogonal initialisation (reproducible without global seeds).
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=generator))
        p, lower, upper = torch.linalg.lu(q)
        diag = torch.diagonal(upper)
        self.register_buffer("perm", p)
        self.register_buffer("sign", torch.sign(diag))
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower)
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.log_s = nn.Parameter(torch.log(diag.abs()))

    def weight(self) -> Tensor:
        eye = torch.eye(len(self.log_s), dtype=self.lower.dtype, device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign * torch.exp(self.log_s))
        return self.perm @ lower @ upper

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        y = torch.einsum("ij,njhw->nihw", self.weight(), x)
        return y, self.log_s.sum().expand(x.shape[0], x.shape[2], x.shape[3])

    def inverse(self, y: Tensor) -> Tensor:
        return torch.einsum("ij,njhw->nihw", torch.linalg.inv(self.weight()), y)


class ChannelPermutation(Bijection2d):
    """A fixed random permutation of the channels (log-det 0), as FastFlow's coupling blocks use.

    Args:
        channels: ``C``.
        generator: Draws the permutation.
    """

    def __init__(self, channels: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        perm = torch.randperm(channels, generator=generator)
        self.register_buffer("perm", perm)
        self.register_buffer("inv_perm", torch.argsort(perm))

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x[:, self.perm], x.new_zeros(x.shape[0], x.shape[2], x.shape[3])

    def inverse(self, y: Tensor) -> Tensor:
        return y[:, self.inv_perm]


def coupling_subnet(in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int) -> nn.Sequential:
    """The small conv net of a coupling: conv - ReLU - conv, 'same' padding, last layer zero-initialised
    so that every coupling starts as the identity."""
    pad = kernel_size // 2
    last = nn.Conv2d(hidden_channels, out_channels, kernel_size, padding=pad)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, hidden_channels, kernel_size, padding=pad), nn.ReLU(), last
    )


class AffineCoupling2d(Bijection2d):
    """Affine coupling on channels: the first half ``x_a`` passes; the second becomes
    ``x_b * exp(s) + t`` with ``(s, t) = subnet(x_a)``, ``s = clamp * tanh(raw / clamp)`` (the soft
    clamp of FastFlow and FrEIA keeps scales bounded, which keeps training stable).

    Args:
        channels: ``C`` (at least 2).
        hidden_channels: Width of the subnet.
        kernel_size: Subnet kernel (3 or 1; FastFlow alternates them).
        clamp: Bound of ``|s|``.
    """

    def __init__(self, channels: int, hidden_channels: int, kernel_size: int = 3, clamp: float = 2.0) -> None:
        super().__init__()
        if channels < 2:
            raise ValueError(f"channels must be at least 2 for a coupling, got {channels}")
        self.split = channels // 2
        self.clamp = clamp
        self.subnet = coupling_subnet(self.split, 2 * (channels - self.split), hidden_channels, kernel_size)

    def _scale_shift(self, xa: Tensor) -> tuple[Tensor, Tensor]:
        raw_s, t = self.subnet(xa).chunk(2, dim=1)
        return self.clamp * torch.tanh(raw_s / self.clamp), t

    def forward_map(self, x: Tensor) -> tuple[Tensor, Tensor]:
        xa, xb = x[:, : self.split], x[:, self.split :]
        s, t = self._scale_shift(xa)
        return torch.cat([xa, xb * torch.exp(s) + t], dim=1), s.sum(1)

    def inverse(self, y: Tensor) -> Tensor:
        ya, yb = y[:, : self.split], y[:, self.split :]
        s, t = self._scale_shift(ya)
        return torch.cat([ya, (yb - t) * torch.exp(-s)], dim=1)


class Squeeze2d(Bijection2d):
    """Space-to-depth: ``(N, C, H, W) -> (N, 4C, H/2, W/2)``, log-det 0 (RealNVP, section 3.6)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(f"squeeze needs even height and width, got {h}x{w}")
        y = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(n)

    def inverse(self, y: Tensor) -> Tensor:
        n, c4, h, w = y.shape
        c = c4 // 4
        return y.reshape(n, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c, 2 * h, 2 * w)

