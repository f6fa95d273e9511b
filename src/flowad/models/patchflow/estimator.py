"""Glow on image patches: per-patch negative log-likelihood in bits per dimension, averaged per
pixel over the overlapping patches that cover it (Glow: Kingma & Dhariwal, arXiv:1807.03039).

With ``fit(images, negative_images=..., negative_masks=...)`` the patch Glow is afterwards fine-tuned
two-class on patches over the (pasted) anomalies, as FastFlow is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from flowad.core.estimator import unprefixed
from flowad.core.image_estimator import BaseImageDetector
from flowad.core.image_maps import extract_patches, gaussian_smooth, patch_average_map
from flowad.core.progress import report
from flowad.core.splits import holdout_split
from flowad.core.training import (
    TrainingHistory,
    resolve_device,
    seeded_torch,
    train_module,
    warn_if_untrained,
)
from flowad.core.two_class import negative_floor, two_class_losses
from flowad.flows.glow import Glow

__all__ = ["BINS", "PatchFlowDetector", "bits_per_dim", "dequantize"]

#: Bins of 8-bit pixel values.
BINS = 256


class PatchFlowDetector(BaseImageDetector):
    """Patch-level Glow with NLL heatmaps.

    Args:
        patch_size: Side of the square patches (divisible by ``2**levels``).
        stride: Step between scored patches (smaller: finer, slower maps).
        levels: Glow's levels (squeeze, steps, split).
        steps: Flow steps per level.
        hidden_channels: Width of the coupling networks.
        max_patches: Training patches drawn at random positions of the training images.
        smooth_sigma: Gaussian blur of the map in pixels (0: none).
        image_score: ``"max"`` or ``"top1_mean"`` of the map.
        contamination: Share of held-out training images above the threshold.
        max_epochs: Most passes over the training data.
        batch_size: Samples per optimisation step.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's weight decay.
        patience: Epochs without a better validation loss before training stops.
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

    supports_negatives = True

    #: Least share of a negative patch's pixels inside the anomaly mask for it to count as a negative.
    min_negative_overlap = 0.1

    def _fit(self, x: Tensor, rng: np.random.Generator, negatives: tuple[Tensor, Tensor] | None = None) -> None:
        self._check_params(x)
        self.device_ = resolve_device(self.device)
        p = int(self.patch_size)
        n, _, h, w = x.shape
        count = int(self.max_patches)
        which = rng.integers(0, n, count)
        rows, cols = rng.integers(0, h - p + 1, count), rng.integers(0, w - p + 1, count)
        patches = self._quantized(_cut(x, which, rows, cols, p))
        train_idx, val_idx = holdout_split(count, rng)
        seed = int(rng.integers(2**31 - 1))
        config = self._training_config()
        val_noise = torch.rand(patches[val_idx].shape, generator=torch.Generator().manual_seed(seed)) / BINS
        with seeded_torch(seed):
            glow = self._new_glow().to(self.device_)
            self.history_: TrainingHistory = train_module(
                glow, bits_per_dim,
                train=patches[train_idx].to(self.device_),
                validation=(patches[val_idx] + val_noise).to(self.device_),
                config=config,
                generator=torch.Generator(device=self.device_).manual_seed(seed),
                augment=dequantize,
            )
        warn_if_untrained(self.history_, "Glow", self.learning_rate)
        if negatives is not None:
            self._fit_negatives(glow, patches[train_idx], patches[val_idx] + val_noise, negatives, rng, seed)
        self.glow_ = glow.double().eval()  # scored in float64: no overflow on far-off patches

    def _negative_patches(self, negatives: tuple[Tensor, Tensor], count: int, rng: np.random.Generator) -> Tensor:
        """Up to ``count`` quantized patches of the negative images that each contain a random anomalous
        pixel and have at least :attr:`min_negative_overlap` of their pixels inside the mask."""
        x_neg, masks = negatives
        p = int(self.patch_size)
        h, w = x_neg.shape[2], x_neg.shape[3]
        which_image, r, c = (a.numpy() for a in torch.nonzero(masks > 0, as_tuple=True))
        if len(which_image) == 0:
            raise ValueError("negative_masks mark no anomalous pixel")
        pick = rng.integers(0, len(which_image), count)
        rows = np.clip(r[pick] - rng.integers(0, p, count), 0, h - p)
        cols = np.clip(c[pick] - rng.integers(0, p, count), 0, w - p)
        overlap = _cut(masks[:, None], which_image[pick], rows, cols, p).flatten(1).mean(1)
        keep = (overlap >= self.min_negative_overlap).numpy()
        return self._quantized(_cut(x_neg, which_image[pick][keep], rows[keep], cols[keep], p))

    def _fit_negatives(self, glow: Glow, normal_train: Tensor, normal_val: Tensor, negatives, rng, seed: int) -> None:
        """Two-class fine-tuning (Chiu & Lai, CVPR 2023 workshops): normal patches keep their likelihood,
        patches over the pasted anomalies are pushed below a floor, the 1% quantile of the normal
        training patches' log-likelihood per dimension under the one-class Glow."""
        negative = self._negative_patches(negatives, len(normal_train) + len(normal_val), rng)
        if len(negative) < 2:
            raise ValueError(f"negative_masks cover too little: fewer than 2 patches of {self.patch_size} px "
                             f"with {self.min_negative_overlap:.0%} of their pixels anomalous")
        neg_train, neg_val = holdout_split(len(negative), rng)
        with torch.no_grad():
            bits = torch.cat([bits_per_dim(glow, b.to(self.device_) + 0.5 / BINS)
                              for b in normal_train.split(4096)])
        self.negative_floor_ = negative_floor(-bits)  # in minus bits per dimension

        def loss(model: Glow, batch: Tensor, labels: Tensor) -> Tensor:
            return two_class_losses(-bits_per_dim(model, batch), labels, self.negative_floor_)

        def labelled(normal: Tensor, anomalous: Tensor) -> tuple[Tensor, Tensor]:
            return (torch.cat([normal, anomalous]).to(self.device_),
                    torch.cat([torch.zeros(len(normal)), torch.ones(len(anomalous))]).to(self.device_))

        train, train_labels = labelled(normal_train, negative[neg_train])
        noise = torch.rand(negative[neg_val].shape, generator=torch.Generator().manual_seed(seed + 2)) / BINS
        validation, validation_labels = labelled(normal_val, negative[neg_val] + noise)
        glow.train()
        self.history_ = train_module(
            glow, loss, train, validation, self._training_config(),
            torch.Generator(device=self.device_).manual_seed(seed + 1), augment=dequantize,
            train_labels=train_labels, validation_labels=validation_labels)  # fmt: skip
        warn_if_untrained(self.history_, "Glow", self.learning_rate)

    @staticmethod
    def _quantized(patches: Tensor) -> Tensor:
        """Lower edges of the 8-bit bins that the pixel values fall in, in [0, 1)."""
        return torch.floor(patches * (BINS - 1) + 0.5) / BINS


    @torch.no_grad()
    def _maps(self, x: Tensor, images_per_batch: int = 4) -> np.ndarray:
        p, s = int(self.patch_size), int(self.stride)
        out = []
        report("scoring", 0, len(x))
        for start in range(0, len(x), images_per_batch):
            chunk = x[start : start + images_per_batch]
            patches, padded = extract_patches(chunk, p, s)
            centred = self._quantized(patches) + 0.5 / BINS  # bin centres: deterministic scores
            values = torch.cat([bits_per_dim(self.glow_, b.to(self.device_, torch.float64)).cpu()
                                for b in torch.split(centred, 2048)])
            maps = patch_average_map(values, len(chunk), padded, (x.shape[2], x.shape[3]), p, s)
            out.append(gaussian_smooth(maps, self.smooth_sigma).numpy())
            report("scoring", start + len(chunk), len(x))
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


def _cut(x: Tensor, which: np.ndarray, rows: np.ndarray, cols: np.ndarray, p: int) -> Tensor:
    """Patches ``(M, C, p, p)`` of ``x`` ``(N, C, H, W)``: image ``which[i]`` at ``(rows[i], cols[i])``."""
    offsets = torch.arange(p)
    r_idx = torch.from_numpy(np.asarray(rows))[:, None] + offsets  # (M, p)
    c_idx = torch.from_numpy(np.asarray(cols))[:, None] + offsets
    return x[torch.from_numpy(np.asarray(which))[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None],
             r_idx[:, None, :, None], c_idx[:, None, None, :]]


def bits_per_dim(glow: Glow, images: Tensor) -> Tensor:
    """Discrete NLL of 8-bit images (or patches) in bits per dimension, ``(B, C, H, W) -> (B,)``.

    ``images`` hold pixel values in [0, 1): the lower bin edges plus dequantisation noise in
    training, the bin centres in scoring; the Glow sees them centred on 0.
    """
    dims = images[0].numel()
    return -(glow.log_prob(images - 0.5) - dims * math.log(BINS)) / (dims * math.log(2))


def dequantize(batch: Tensor, extra, generator: torch.Generator) -> Tensor:
    """Uniform noise inside each 8-bit bin."""
    return batch + torch.rand(batch.shape, generator=generator, device=batch.device, dtype=batch.dtype) / BINS
