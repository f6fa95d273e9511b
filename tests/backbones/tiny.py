"""A small random-initialised backbone for tests (importable by a fresh process)."""

import torch
from torch import nn


class TinyBackbone(nn.Module):
    """Images (N, 3, H, W) -> {"s4": (N, 8, H/4, W/4), "s8": (N, 16, H/8, W/8)}; weights from ``seed``."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.a = nn.Conv2d(3, 8, 3, stride=4, padding=1)
        self.b = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return {"s4": h, "s8": torch.tanh(self.b(h))}
