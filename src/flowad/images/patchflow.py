"""Glow on image patches: per-patch negative log-likelihood in bits per dimension, averaged per
pixel over the overlapping patches that cover it (Glow: Kingma & Dhariwal, arXiv:1807.03039).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from flowad.detectors.base import unprefixed
from flowad.detectors.training import (
    TrainingHistory,
    resolve_device,
    seeded_torch,
    split_validation,
    train_module,
)
from flowad.flows.glow import Glow
from flowad.images.base import BaseImageDetector
from flowad.images.maps import extract_patches, gaussian_smooth, patch_average_map
from flowad.io import register_model

__all__ = ["PatchFlowDetector"]

_BINS = 256  # 8-bit images


@register_model
class PatchFlowDetector(BaseImageDetector):
    """Patch-level Glow with NLL heatmaps.

    Args:
        patch_size: Side of the square patches (divisible by ``2**levels``).
        stride: Step between scored patches (smaller: finer, slower maps).
        levels, steps, hidden_channels: Glow's shape.
        max_patches: Training patches drawn at random positions of the training images.
        smooth_sigma: Gaussian blur of the map in pixels (0: none).
        image_score: ``"max"`` or ``"top1_mean"`` of the map.
        contamination: Share of held-out training images above the threshold.
        max_epochs, batch_size, learning_rate, weight_decay, patience: Training.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        random_state: Seed.
    """

    def __init__(
        self,
        patch_size: int = 16,
        stride: int = 4,
        levels: int = 2,
        steps: int = 4,
        hidden_channels: int = 64,
        max_patches: int = 10_000,
        smooth_sigma: float = 0.0,
        image_score: str = "max",
        contamination: float | str = "auto",
        max_epochs: int = 30,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 8,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.patch_size = patch_size
        self.stride = stride
        self.levels = levels
        self.steps = steps
        self.hidden_channels = hidden_channels
        self.max_patches = max_patches
        self.smooth_sigma = smooth_sigma
        self.image_score = image_score
        self.contamination = contamination
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.device = device
        self.random_state = random_state

    def _check_params(self, x: Tensor) -> None:
        self._check_at_least_one("patch_size", "stride", "levels", "steps", "hidden_channels", "max_patches")
        if self.patch_size % 2**self.levels:
            raise ValueError(f"patch_size must be divisible by 2**levels = {2**self.levels}, got {self.patch_size}")
        if self.patch_size > min(x.shape[2], x.shape[3]):
            raise ValueError(f"patch_size {self.patch_size} is larger than the images ({x.shape[2]}x{x.shape[3]})")

    def _new_glow(self) -> Glow:
        return Glow(self.n_channels_, int(self.levels), int(self.steps), int(self.hidden_channels),
                    random_state=self.random_state)

    def _fit(self, x: Tensor, rng: np.random.Generator) -> None:
        self._check_params(x)
        self.device_ = resolve_device(self.device)
        p = int(self.patch_size)
        n, _, h, w = x.shape
        count = int(self.max_patches)
        which = rng.integers(0, n, count)
        rows, cols = rng.integers(0, h - p + 1, count), rng.integers(0, w - p + 1, count)
        offsets = torch.arange(p)
        r_idx = torch.from_numpy(rows)[:, None] + offsets  # (M, p)
        c_idx = torch.from_numpy(cols)[:, None] + offsets
        patches = x[torch.from_numpy(which)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
                    r_idx[:, None, :, None], c_idx[:, None, None, :]]
        patches = self._quantized(patches)
        train_idx, val_idx = split_validation(count, 0.1, rng, min_validation=1)
        seed = int(rng.integers(2**31 - 1))
        config = self._training_config()
        val_noise = torch.rand(patches[val_idx].shape, generator=torch.Generator().manual_seed(seed)) / _BINS
        with seeded_torch(seed):
            glow = self._new_glow().to(self.device_)
            self.history_: TrainingHistory = train_module(
                glow, lambda model, batch: self._bits_per_dim(model, batch),
                train=patches[train_idx].to(self.device_),
                validation=(patches[val_idx] + val_noise).to(self.device_),
                config=config,
                generator=torch.Generator(device=self.device_).manual_seed(seed),
                augment=_dequantize,
            )
        self.glow_ = glow.double().eval()  # scored in float64: no overflow on far-off patches

    @staticmethod
    def _quantized(patches: Tensor) -> Tensor:
        """Lower edges of the 8-bit bins that the pixel values fall in, in [0, 1)."""
        return torch.floor(patches * (_BINS - 1) + 0.5) / _BINS

    @staticmethod
    def _bits_per_dim(glow: Glow, patches: Tensor) -> Tensor:
        """Discrete NLL of 8-bit patches in bits per dimension, ``(B, C, p, p) -> (B,)``."""
        dims = patches[0].numel()
        log_density = glow.log_prob(patches - 0.5)
        return -(log_density - dims * math.log(_BINS)) / (dims * math.log(2))

    @torch.no_grad()
    def _maps(self, x: Tensor, images_per_batch: int = 4) -> np.ndarray:
        p, s = int(self.patch_size), int(self.stride)
        out = []
        for start in range(0, len(x), images_per_batch):
            chunk = x[start : start + images_per_batch]
            patches, padded = extract_patches(chunk, p, s)
            centred = self._quantized(patches) + 0.5 / _BINS  # bin centres: deterministic scores
            values = torch.cat([self._bits_per_dim(self.glow_, b.to(self.device_, torch.float64)).cpu()
                                for b in torch.split(centred, 2048)])
            maps = patch_average_map(values, len(chunk), padded, (x.shape[2], x.shape[3]), p, s)
            out.append(gaussian_smooth(maps, self.smooth_sigma).numpy())
        return np.concatenate(out).astype(np.float64)

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        arrays.update({f"glow.{k}": v.cpu().numpy() for k, v in self.glow_.state_dict().items()})
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.device_ = resolve_device(self.device)
        glow = self._new_glow()
        glow.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in unprefixed("glow", arrays).items()})
        self.glow_ = glow.double().to(self.device_).eval()


def _dequantize(batch: Tensor, extra, generator: torch.Generator) -> Tensor:
    """Uniform noise inside each 8-bit bin."""
    return batch + torch.rand(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype) / _BINS
