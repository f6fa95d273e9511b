"""FastFlow over a frozen pretrained CNN (Yu et al., "FastFlow: Unsupervised Anomaly Detection
and Localization via 2D Normalizing Flows", arXiv:2111.07677).

Images are resized so that their shorter side is ``input_size`` (256 by default, the size FastFlow
implementations use with CNN backbones) and mirrored outwards by a margin (reflect padding):
without the margin the backbone's zero padding makes every image's border look unlike its interior
(on the grass texture set, 46 of 50 normal crops had their highest map value within 8 px of the
border). Feature maps of a frozen backbone (:mod:`flowad.backbones`; EfficientNet-Lite0 by default)
at two or three strides (by default 4, 8 and 16; with the Lite models the stride-16 map ends the
first group of blocks at that stride, not the wider one after it: on the texture set it is the
better of the two, with a flow and without one) are standardised per image (a
LayerNorm without learned parameters, so the flow cannot shrink its own input), and one 2D flow per
stride models them, margin included. The anomaly map is minus the per-position log-likelihood in
nats per channel, with the margin cut off, upsampled to the image and averaged over strides.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from flowad.backbones.binding import BackboneBinding
from flowad.core import progress
from flowad.core.estimator import prefixed, unprefixed
from flowad.core.image_estimator import BaseImageDetector
from flowad.core.splits import holdout_split
from flowad.core.training import (
    TrainingHistory,
    resolve_device,
    seeded_torch,
    train_module,
    warn_if_untrained,
)
from flowad.core.two_class import negative_floor, two_class_losses
from flowad.flows.fastflow2d import FastFlow2d
from flowad.models.fastflow.torch_model import FastFlowScoring, backbone_input, stage_features

__all__ = ["FastFlowDetector", "mask_cells"]


def mask_cells(masks: Tensor, shape: tuple[int, int], input_size: int | None, margin: int) -> Tensor:
    """Which cells of a stage's feature map ``shape`` (margin included) overlap a mask: masks
    ``(N, H, W)`` -> ``(N, h, w)`` float 0/1. The masks are resized and mirrored as their images are."""
    prepared = backbone_input(masks[:, None].float(), input_size, margin)
    return (F.adaptive_max_pool2d(prepared, shape)[:, 0] > 0).float()


class FastFlowDetector(BackboneBinding, BaseImageDetector):
    """FastFlow anomaly maps over the features of a frozen backbone.

    Args:
        backbone: The feature extractor (:mod:`flowad.backbones`): ``"efficientnet_lite0"``,
            ``"efficientnet_lite2"``, ``"torchvision:NAME"``, ``"timm:NAME"``, an ``.onnx`` file
            or a ``torch.nn.Module``. The model file records it and refuses another one.
        stages: Backbone stages to model, one flow each; None: the stages at strides 4, 8 and 16
            of a named backbone (a module's own stages when it is passed as an object).
        input_size: Shorter image side after a bilinear resize, before the backbone (aspect ratio
            kept); None keeps the images' size. Maps always come back at the input resolution.
        reflect_margin: Pixels mirrored outwards on every side of the resized image, so that borders
            are seen with context; cut from the maps again. A multiple of the largest stage stride
            (0: none, the backbone's zero padding then shows at the borders).
        steps: Couplings per flow.
        hidden_ratio: Coupling subnet width as a share of the stage's channels.
        clamp: Bound of the couplings' log-scales.
        conv3x3_only: 3x3 subnets everywhere instead of alternating 3x3 and 1x1.
        smooth_sigma: Gaussian blur of the anomaly maps, in pixels (0: none). The default, 4 px, is
            the blur of the published FastFlow and PatchCore implementations.
        image_score: ``"max"`` or ``"top1_mean"`` of the map.
        image_score_sigma: Gaussian blur of the map the image score is read from, in pixels
            (0, the default: the unblurred map, whose maximum separates images better than the
            blurred one's). Set it to ``smooth_sigma`` to score the map you see.
        contamination: Share of held-out training images above the threshold (``"auto"``: 1%).
        max_epochs: Most passes over the training data.
        batch_size: Samples per optimisation step.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's weight decay.
        patience: Epochs without a better validation loss before training stops.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        random_state: Seed of the splits, the initialisation and the batches.
    """

    def __init__(
        self,
        backbone="efficientnet_lite0",
        stages: tuple[str, ...] | None = None,
        input_size: int | None = 256,
        reflect_margin: int = 32,
        steps: int = 8,
        hidden_ratio: float = 1.0,
        clamp: float = 2.0,
        conv3x3_only: bool = False,
        smooth_sigma: float = 4.0,
        image_score: str = "max",
        image_score_sigma: float = 0.0,
        contamination: float | str = "auto",
        max_epochs: int = 40,
        batch_size: int = 16,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        patience: int = 10,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.backbone = backbone
        self.stages = stages
        self.input_size = input_size
        self.reflect_margin = reflect_margin
        self.steps = steps
        self.hidden_ratio = hidden_ratio
        self.clamp = clamp
        self.conv3x3_only = conv3x3_only
        self.smooth_sigma = smooth_sigma
        self.image_score = image_score
        self.image_score_sigma = image_score_sigma
        self.contamination = contamination
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.device = device
        self.random_state = random_state

    default_strides = (4, 8, 16)

    def _check_params(self) -> None:
        self._check_backbone_params()
        self._check_at_least_one("steps")
        if not self.image_score_sigma >= 0:
            raise ValueError(f"image_score_sigma must be >= 0, got {self.image_score_sigma!r}")

    def _features(self, x: Tensor, batch_size: int = 16) -> list[Tensor]:
        """Standardised feature maps per stage, margin included, for images ``(N, C, H, W)``."""
        backbone = self._backbone()
        per_stage: list[list[Tensor]] = [[] for _ in backbone.stages]
        for start in range(0, len(x), batch_size):
            chunk = backbone_input(x[start : start + batch_size].to(self.device_), self.input_size, self.reflect_margin)
            for store, f in zip(per_stage, stage_features(backbone, chunk), strict=True):
                store.append(f)
            progress.report("features", min(start + batch_size, len(x)), len(x))
        return [torch.cat(store) for store in per_stage]

    def _new_flows(self) -> list[FastFlow2d]:
        seed = 0 if self.random_state is None else int(self.random_state)
        return [
            FastFlow2d(channels, self.steps, self.hidden_ratio, self.clamp, self.conv3x3_only, seed + i)
            for i, channels in enumerate(self._stage_channels())
        ]

    def _stage_channels(self) -> list[int]:
        """Channels per stage: from the fitted backbone's record when there is one, so that loading a
        model file does not build the backbone (that waits for the first score)."""
        spec = getattr(self, "backbone_spec_", None)
        return list(spec["channels"]) if spec and spec.get("channels") else list(self._backbone().channels)

    supports_negatives = True

    def _fit(self, x: Tensor, rng: np.random.Generator, negatives: tuple[Tensor, Tensor] | None = None) -> None:
        self._check_params()
        self.device_ = resolve_device(self.device)
        backbone = self._bind_backbone()
        self._check_margin(max(backbone.strides))
        features = self._features(x)
        train_idx, val_idx = holdout_split(len(x), rng)
        seed = int(rng.integers(2**31 - 1))
        config = self._training_config()

        def loss(flow: FastFlow2d, batch: Tensor) -> Tensor:  # nats per channel and position
            return -flow.log_prob_map(batch).flatten(1).mean(1) / batch.shape[1]

        with seeded_torch(seed):
            flows = self._new_flows()
        self.histories_: list[TrainingHistory] = []
        for i, (flow, f) in enumerate(zip(flows, features, strict=True)):
            flow.to(self.device_)
            generator = torch.Generator(device=self.device_).manual_seed(seed)
            with progress.part(f"stage {i + 1} of {len(flows)}"):
                self.histories_.append(train_module(flow, loss, f[train_idx], f[val_idx], config, generator))
            warn_if_untrained(self.histories_[-1], "flow", self.learning_rate)
            flow.eval()
        self.flows_ = flows
        if negatives is not None:
            self._fit_negatives(features, train_idx, val_idx, negatives, config, seed, rng)

    def _fit_negatives(self, features, train_idx, val_idx, negatives, config, seed, rng) -> None:
        """Two-class fine-tuning of each stage's flow (Chiu & Lai, CVPR 2023 workshops): positions of
        the normal images keep their likelihood, positions inside the pasted anomalies' masks are pushed
        below the 1% quantile of the normal positions' log-likelihood (the floor, from the one-class
        flow). A feature cell that overlaps a mask at all counts as a negative: its features already
        see the anomaly, and labelling it normal would teach the flow that anomalies are normal."""
        x_neg, masks = negatives
        neg_features = self._features(x_neg)
        neg_train, neg_val = holdout_split(len(x_neg), rng)
        self.negative_floors_ = []
        for i, (flow, f, g) in enumerate(zip(self.flows_, features, neg_features, strict=True)):
            labels = mask_cells(masks, g.shape[2:], self.input_size, self.reflect_margin).to(self.device_)
            normal_labels = torch.zeros(len(f), *f.shape[2:], device=self.device_)
            normal_train = f[train_idx]
            with torch.no_grad():
                per_position = torch.cat([flow.log_prob_map(b) for b in normal_train.split(16)]) / f.shape[1]
            floor = negative_floor(per_position)
            self.negative_floors_.append(floor)

            def loss(module: FastFlow2d, batch: Tensor, batch_labels: Tensor, floor=floor) -> Tensor:
                log_prob = module.log_prob_map(batch) / batch.shape[1]
                per = two_class_losses(log_prob.flatten(), batch_labels.flatten(), floor)
                return per.reshape(len(batch), -1).mean(1)

            flow.train()
            generator = torch.Generator(device=self.device_).manual_seed(seed + i)
            with progress.part(f"two-class stage {i + 1} of {len(self.flows_)}"):
                self.histories_[i] = train_module(
                    flow, loss, torch.cat([normal_train, g[neg_train]]), torch.cat([f[val_idx], g[neg_val]]),
                    config, generator, train_labels=torch.cat([normal_labels[train_idx], labels[neg_train]]),
                    validation_labels=torch.cat([normal_labels[val_idx], labels[neg_val]]))
            warn_if_untrained(self.histories_[i], "flow", self.learning_rate)
            flow.eval()

    def _graph(self) -> FastFlowScoring:
        """The scoring graph (:mod:`~flowad.models.fastflow.torch_model`) that every score and map runs."""
        return FastFlowScoring(self._backbone(), self.flows_, self.input_size, self.reflect_margin,
                               self.smooth_sigma, self.image_score, self.image_score_sigma)

    def _scores_and_maps(self, x: Tensor, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
        return self._run_graph(self._graph(), x, batch_size)

    def _maps(self, x: Tensor) -> np.ndarray:
        return self._scores_and_maps(x)[1]

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state.update(self._backbone_state())
        for i, flow in enumerate(self.flows_):
            arrays.update(prefixed(f"flow{i}", {k: v.cpu().numpy() for k, v in flow.state_dict().items()}))
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.device_ = resolve_device(self.device)
        self._load_backbone_state(state)
        flows = self._new_flows()
        for i, flow in enumerate(flows):
            flow.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in unprefixed(f"flow{i}", arrays).items()})
            flow.to(self.device_).eval()
        self.flows_ = flows
