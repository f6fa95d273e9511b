"""A small U-Net that segments anomalies, trained on normal images and images with pasted
(synthetic) anomalies whose masks are known exactly (U-Net: Ronneberger et al., "U-Net:
Convolutional Networks for Biomedical Image Segmentation", arXiv:1505.04597).

It learns from examples of anomalies instead of a density of the normal data: given negatives from
:mod:`flowad.synth` (patches drawn from a flow's low-likelihood region, pasted into normal images),
it predicts per pixel whether the pixel belongs to a pasted region. Whether that carries over to
real defects it never saw is the question the benchmark ``benchmarks/synthetic_unet.py`` answers.
The map is the logit of the predicted anomaly probability (monotone in the probability, and free
of the ties that a saturated sigmoid gives in float32).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowad.core.estimator import unprefixed
from flowad.core.image_estimator import BaseImageDetector
from flowad.core.image_maps import gaussian_smooth
from flowad.core.splits import holdout_split
from flowad.core.training import (
    TrainingHistory,
    resolve_device,
    seeded_torch,
    train_module,
    warn_if_untrained,
)

__all__ = ["UNet", "UNetSegmenter", "segmentation_losses"]


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(),
    )  # fmt: skip


class UNet(nn.Module):
    """Encoder-decoder with skip connections; one logit per pixel.

    Args:
        channels: Input channels.
        base_channels: Width of the first level; each level below doubles it.
        depth: Number of down-sampling steps; inputs are padded to a multiple of ``2**depth``.

    Shapes: ``(B, channels, H, W) -> (B, 1, H, W)``.
    """

    def __init__(self, channels: int, base_channels: int = 16, depth: int = 3) -> None:
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.depth = depth
        self.down = nn.ModuleList([_block(channels, widths[0])]
                                  + [_block(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([_block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[2], x.shape[3]
        multiple = 2**self.depth
        x = F.pad(x, (0, (-w) % multiple, 0, (-h) % multiple), mode="replicate")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for block in self.up:
            skip = skips.pop()
            x = block(torch.cat([F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False), skip], 1))
        return self.head(x)[:, :, :h, :w]


def segmentation_losses(logits: Tensor, masks: Tensor) -> Tensor:
    """Per-image loss: binary cross-entropy plus soft Dice loss, ``(B, 1, H, W), (B, 1, H, W) -> (B,)``.

    The Dice term keeps small anomalies from drowning in the background pixels; on an image without
    anomaly it reduces to ``1 - 1 / (1 + sum(p))``, which pushes every predicted probability to 0.
    """
    bce = F.binary_cross_entropy_with_logits(logits, masks, reduction="none").flatten(1).mean(1)
    p = torch.sigmoid(logits).flatten(1)
    m = masks.flatten(1)
    dice = (2 * (p * m).sum(1) + 1) / (p.sum(1) + m.sum(1) + 1)
    return bce + (1 - dice)


def _augmentation(flip: bool, crop_size: int | None):
    """``augment(batch, extra, generator)`` for :func:`train_module`: a random ``crop_size`` square
    (the same place in image and mask channels) and random flips and transposes per image."""

    def augment(batch: Tensor, extra, generator: torch.Generator) -> Tensor:
        h, w = batch.shape[2], batch.shape[3]
        if crop_size is not None and (crop_size < h or crop_size < w):
            size_h, size_w = min(crop_size, h), min(crop_size, w)
            corners = torch.rand(len(batch), 2, generator=generator, device=generator.device).tolist()
            crops = []
            for item, (r, c) in zip(batch, corners, strict=True):
                top, left = int(r * (h - size_h + 1)), int(c * (w - size_w + 1))
                crops.append(item[:, top : top + size_h, left : left + size_w])
            batch = torch.stack(crops)
        return _flipped(batch, generator) if flip else batch

    return augment


def _flipped(batch: Tensor, generator: torch.Generator) -> Tensor:
    """Random horizontal/vertical flips and transposes per image (all channels together)."""
    flips = torch.rand(len(batch), 3, generator=generator, device=generator.device).tolist()
    out = []
    for item, (fh, fv, tr) in zip(batch, flips, strict=True):
        if fh < 0.5:
            item = item.flip(-1)
        if fv < 0.5:
            item = item.flip(-2)
        if tr < 0.5 and item.shape[-1] == item.shape[-2]:
            item = item.transpose(-1, -2)
        out.append(item)
    return torch.stack(out)


class UNetSegmenter(BaseImageDetector):
    """Anomaly segmentation learnt from images with known anomalies (synthetic or real).

    ``fit(images, negative_images=..., negative_masks=...)``: ``images`` are normal (their target
    mask is empty); ``negative_images`` carry anomalies at ``negative_masks``. Both are required:
    a segmenter cannot learn from normal images alone (use :mod:`flowad.synth` to make negatives).

    Args:
        base_channels: Channels of the first level (see :class:`UNet`).
        depth: Levels of down- and up-sampling.
        augment: Random flips and transposes during training.
        crop_size: Train on random ``crop_size`` squares of the images (``None``: whole images);
            cheaper per step and more varied, scoring still sees whole images.
        smooth_sigma: Gaussian blur of the logit map in pixels (0: none).
        image_score: ``"max"`` or ``"top1_mean"`` of the map.
        contamination: Share of held-out normal training images above the threshold.
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
        base_channels: int = 16,
        depth: int = 3,
        augment: bool = True,
        crop_size: int | None = 64,
        smooth_sigma: float = 0.0,
        image_score: str = "max",
        contamination: float | str = "auto",
        max_epochs: int = 40,
        batch_size: int = 16,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 8,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.base_channels = base_channels
        self.depth = depth
        self.augment = augment
        self.crop_size = crop_size
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

    supports_negatives = True

    def _new_net(self) -> UNet:
        return UNet(self.n_channels_, int(self.base_channels), int(self.depth))

    def _fit(self, x: Tensor, rng: np.random.Generator, negatives: tuple[Tensor, Tensor] | None = None) -> None:
        self._check_at_least_one("base_channels", "depth")
        if self.crop_size is not None and int(self.crop_size) < 2 ** int(self.depth):
            raise ValueError(f"crop_size must be None or at least 2**depth = {2 ** int(self.depth)}, "
                             f"got {self.crop_size!r}")
        if negatives is None:
            raise ValueError("UNetSegmenter needs negative_images and negative_masks: images with known anomalies "
                             "(for example pasted synthetic ones from flowad.synth.synthetic_anomalies)")
        self.device_ = resolve_device(self.device)
        x_neg, masks = negatives
        # Image and target mask travel as one tensor, so that augmentation flips them together.
        normal = torch.cat([x, torch.zeros(len(x), 1, *x.shape[2:])], 1)
        anomalous = torch.cat([x_neg, masks[:, None]], 1)
        n_train, n_val = holdout_split(len(normal), rng)
        a_train, a_val = holdout_split(len(anomalous), rng)
        train = torch.cat([normal[n_train], anomalous[a_train]]).to(self.device_)
        validation = torch.cat([normal[n_val], anomalous[a_val]]).to(self.device_)
        self.channel_mean_ = x.mean(dim=(0, 2, 3)).tolist()
        self.channel_std_ = x.std(dim=(0, 2, 3)).clamp_min(1e-3).tolist()
        seed = int(rng.integers(2**31 - 1))
        with seeded_torch(seed):
            net = self._new_net().to(self.device_)
            self.history_: TrainingHistory = train_module(
                net, lambda model, batch: segmentation_losses(model(self._standardized(batch[:, :-1])), batch[:, -1:]),
                train=train, validation=validation, config=self._training_config(),
                generator=torch.Generator(device=self.device_).manual_seed(seed),
                augment=_augmentation(bool(self.augment), None if self.crop_size is None else int(self.crop_size)),
            )  # fmt: skip
        warn_if_untrained(self.history_, "U-Net", self.learning_rate)
        self.net_ = net.eval()

    def _standardized(self, x: Tensor) -> Tensor:
        mean = torch.tensor(self.channel_mean_, device=x.device)[None, :, None, None]
        std = torch.tensor(self.channel_std_, device=x.device)[None, :, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def _maps(self, x: Tensor, batch_size: int = 16) -> np.ndarray:
        out = []
        for start in range(0, len(x), batch_size):
            logits = self.net_(self._standardized(x[start : start + batch_size].to(self.device_)))[:, 0]
            out.append(gaussian_smooth(logits, self.smooth_sigma).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state.update(channel_mean_=list(self.channel_mean_), channel_std_=list(self.channel_std_))
        arrays.update({f"net.{k}": v.cpu().numpy() for k, v in self.net_.state_dict().items()})
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.channel_mean_ = [float(v) for v in state["channel_mean_"]]
        self.channel_std_ = [float(v) for v in state["channel_std_"]]
        self.device_ = resolve_device(self.device)
        net = self._new_net()
        net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in unprefixed("net", arrays).items()})
        self.net_ = net.to(self.device_).eval()
