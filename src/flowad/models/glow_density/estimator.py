"""A whole-image Glow density for the studies: 8-bit grey images in, bits per dimension out.

Glow (Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1 Convolutions",
arXiv:1807.03039) over the whole image, trained with the project's loop
(:func:`flowad.core.training.train_module`) on uniformly dequantised 8-bit pixels, exactly as
:class:`~flowad.models.PatchFlowDetector` trains its patch Glow. Besides the discrete negative
log-likelihood in bits per dimension it gives the latent codes and an exact *additive* split of the
log-likelihood over pixels (:meth:`GlowDensity.bits_map`): every Glow layer here contributes a term
per spatial position, and a position at level ``l`` covers a ``2**l x 2**l`` block of pixels, so the
block's term is spread evenly over it. The map sums to the image's total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowad.core.splits import holdout_split
from flowad.core.training import TrainingConfig, TrainingHistory, seeded_torch, train_module
from flowad.flows.glow import Glow
from flowad.flows.layers2d import Squeeze2d
from flowad.models.patchflow.estimator import BINS, bits_per_dim, dequantize

__all__ = ["GlowConfig", "GlowDensity", "block_max"]

_LOG_2PI = math.log(2 * math.pi)


@dataclass
class GlowConfig:
    """Shape and training of a :class:`GlowDensity`."""

    levels: int = 2
    steps: int = 4
    hidden_channels: int = 64
    max_epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 5


def _as_grey(images, name: str = "images") -> Tensor:
    """uint8 ``(N, H, W)`` -> float ``(N, 1, H, W)`` holding the lower bin edges ``u / 256``."""
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8 or len(images) == 0:
        raise ValueError(f"{name} must be non-empty uint8 grey images (N, H, W), got {images.dtype} {images.shape}")
    return torch.from_numpy(images.astype(np.float32) / BINS)[:, None]


def _spread(values: Tensor, scale: int) -> Tensor:
    """Per-position terms ``(N, h, w)`` -> per-pixel ``(N, h*scale, w*scale)``, each block's term split evenly."""
    if scale == 1:
        return values
    return values.repeat_interleave(scale, 1).repeat_interleave(scale, 2) / scale**2


def _gaussian(z: Tensor) -> Tensor:
    """Standard-normal log-density per position, summed over channels: ``(N, C, h, w) -> (N, h, w)``."""
    return (-0.5 * z**2 - 0.5 * _LOG_2PI).sum(1)


class GlowDensity:
    """Whole-image Glow on 8-bit grey images ``(N, H, W)`` with H, W divisible by ``2**levels``.

    Args:
        config: Shape and training settings.
        random_state: Seed of the initialisation, the validation split, shuffling and noise.

    Attributes (after ``fit``):
        glow_: The trained model (float64, eval mode).
        history_: Loss curves of training (bits per dimension).
    """

    def __init__(self, config: GlowConfig | None = None, random_state: int = 0) -> None:
        self.config = config or GlowConfig()
        self.random_state = random_state

    def fit(self, images: np.ndarray) -> GlowDensity:
        """Fit by maximum likelihood on dequantised pixels.

        Args:
            images: ``(N, H, W)`` uint8, ``N >= 2``.
        """
        x = _as_grey(images)
        if len(x) < 2:
            raise ValueError(f"images must hold at least 2 images, got {len(x)}")
        c = self.config
        factor = 2**c.levels
        if x.shape[2] % factor or x.shape[3] % factor:
            raise ValueError(f"image sides must be divisible by 2**levels = {factor}, got {tuple(x.shape[2:])}")
        rng = np.random.default_rng(self.random_state)
        train_idx, val_idx = holdout_split(len(x), rng)
        seed = int(rng.integers(2**31 - 1))
        val = x[val_idx] + torch.rand(x[val_idx].shape, generator=torch.Generator().manual_seed(seed)) / BINS
        config = TrainingConfig(max_epochs=c.max_epochs, batch_size=c.batch_size, learning_rate=c.learning_rate,
                                weight_decay=c.weight_decay, patience=c.patience)
        with seeded_torch(seed):
            glow = Glow(1, c.levels, c.steps, c.hidden_channels, random_state=seed)
            self.history_: TrainingHistory = train_module(
                glow, bits_per_dim, x[train_idx], val, config,
                torch.Generator().manual_seed(seed), augment=dequantize)
        self.glow_ = glow.double().eval()
        self.shape_ = (int(x.shape[2]), int(x.shape[3]))
        return self

    def _centred(self, images) -> Tensor:
        if not hasattr(self, "glow_"):
            raise ValueError("this GlowDensity is not fitted yet; call fit first")
        x = _as_grey(images)
        if tuple(x.shape[2:]) != self.shape_:
            raise ValueError(f"images must be {self.shape_[0]}x{self.shape_[1]} like the training images, "
                             f"got {tuple(x.shape[2:])}")
        return x.double() + 0.5 / BINS - 0.5  # bin centres: deterministic scores

    @torch.no_grad()
    def bits_per_dim(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Discrete NLL in bits per pixel, ``(N, H, W) uint8 -> (N,)`` (lower = more likely)."""
        x = self._centred(images)
        dims = x[0].numel()
        out = [-(self.glow_.log_prob(b) - dims * math.log(BINS)) / (dims * math.log(2)) for b in x.split(batch_size)]
        return torch.cat(out).numpy()

    @torch.no_grad()
    def latent_sq_norm(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """``||z||^2`` of each image's latent code, ``(N, H, W) -> (N,)`` (``H*W`` degrees of freedom)."""
        x = self._centred(images)
        return torch.cat([(self.glow_(b)[0] ** 2).sum(1) for b in x.split(batch_size)]).numpy()

    @torch.no_grad()
    def bits_map(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Exact per-pixel split of the discrete NLL in bits, ``(N, H, W) -> (N, H, W)``.

        Each pixel carries ``log2(256)`` (its bin width) minus its share of the log-density: the
        log-dets of every layer and the Gaussian terms of the codes split off at each level, each
        spread evenly over the block of pixels its position covers. ``map.mean((1, 2))`` equals
        :meth:`bits_per_dim`.
        """
        x = self._centred(images)
        return torch.cat([self._log_density_map(b) for b in x.split(batch_size)]).neg().add(
            math.log(BINS)).div(math.log(2)).numpy()

    def _log_density_map(self, x: Tensor) -> Tensor:
        glow = self.glow_
        total = x.new_zeros(x.shape[0], x.shape[2], x.shape[3])
        h, scale = x, 1
        for index, layers in enumerate(glow.blocks):
            for layer in layers:
                if isinstance(layer, Squeeze2d):
                    h, _ = layer(h)
                    scale *= 2
                    continue
                h, term = layer.forward_map(h)
                total = total + _spread(term, scale)
            if index < glow.levels - 1:
                half = h.shape[1] // 2
                total = total + _spread(_gaussian(h[:, half:]), scale)
                h = h[:, :half]
        return total + _spread(_gaussian(h), scale)


def block_max(bits_map: np.ndarray, block: int = 4) -> np.ndarray:
    """Largest NLL of any ``block x block`` tile of per-pixel maps (a local image score):
    ``(N, H, W) -> (N,)`` in bits per tile; H and W divisible by ``block``."""
    n, h, w = bits_map.shape
    if block < 1 or h % block or w % block:
        raise ValueError(f"block must divide the map sides ({h}x{w}), got {block!r}")
    return bits_map.reshape(n, h // block, block, w // block, block).sum((2, 4)).reshape(n, -1).max(1)
