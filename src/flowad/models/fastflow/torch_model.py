"""FastFlow's scoring graph: images in, image scores and anomaly maps out, in one torch module.

``FastFlowDetector.score_samples``, ``anomaly_map`` and the ONNX export all run this module
(float32): resize, mirrored margin, backbone, per-image LayerNorm, one 2D flow per stage, margin cut,
bilinear upsampling, the mean over stages, optional Gaussian blur, and the image score (the map's
maximum or the mean of its top 1%), read off a map with its own blur (by default the unblurred one).

Example:
    >>> import torch
    >>> from flowad.flows import FastFlow2d
    >>> class Tiny(torch.nn.Module):              # any backbone with ``strides`` and a list of maps
    ...     strides = (4,)
    ...     def forward(self, x):
    ...         return [torch.nn.functional.avg_pool2d(x.repeat(1, 2, 1, 1), 4)]
    >>> graph = FastFlowScoring(Tiny(), [FastFlow2d(6, steps=2)], input_size=None, reflect_margin=0)
    >>> score, maps = graph(torch.rand(2, 3, 32, 32))
    >>> tuple(score.shape), tuple(maps.shape)
    ((2,), (2, 32, 32))
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from flowad.core.image_maps import aggregate_map_tensor, backbone_input, gaussian_smooth, upsample

__all__ = ["FastFlowScoring", "backbone_input", "fastflow_map", "stage_features"]


def stage_features(backbone: nn.Module, x: Tensor) -> list[Tensor]:
    """The backbone's feature maps of prepared images, each standardised per image (LayerNorm over C, h, w)."""
    return [F.layer_norm(f, f.shape[1:]) for f in backbone(x)]


def fastflow_map(backbone: nn.Module, flows, x: Tensor, input_size: int | None, margin: int) -> Tensor:
    """Anomaly maps ``(N, H, W)`` of images ``x`` ``(N, C, H, W)``: per stage minus the log-likelihood
    per position and channel, the margin cut off, upsampled to ``(H, W)``; averaged over stages."""
    size = (x.shape[2], x.shape[3])
    total = x.new_zeros(x.shape[0], *size)
    for flow, f, stride in zip(flows, stage_features(backbone, backbone_input(x, input_size, margin)),
                               backbone.strides, strict=True):
        m = -flow.log_prob_map(f) / f.shape[1]
        k = margin // stride
        if k:
            m = m[:, k : m.shape[1] - k, k : m.shape[2] - k]
        total = total + upsample(m, size)
    return total / len(flows)


class FastFlowScoring(nn.Module):
    """Images ``(N, C, H, W)`` float32 in [0, 1] -> ``(score (N,), anomaly_map (N, H, W))``.

    Args:
        backbone: Feature extractor with ``strides``; ``backbone(x)`` is a list of maps, one per stage.
        flows: One :class:`~flowad.flows.FastFlow2d` per stage.
        input_size, reflect_margin: As for :class:`~flowad.models.FastFlowDetector`.
        smooth_sigma: Gaussian blur of the returned map in pixels (0: none).
        image_score: ``"max"`` or ``"top1_mean"``.
        image_score_sigma: Gaussian blur of the map the image score is read from (0: the unblurred map).
    """

    def __init__(self, backbone: nn.Module, flows, input_size: int | None, reflect_margin: int,
                 smooth_sigma: float = 0.0, image_score: str = "max", image_score_sigma: float = 0.0) -> None:
        super().__init__()
        self.backbone = backbone
        self.flows = nn.ModuleList(flows)
        self.input_size = input_size
        self.reflect_margin = int(reflect_margin)
        self.smooth_sigma = float(smooth_sigma)
        self.image_score = image_score
        self.image_score_sigma = float(image_score_sigma)

    def maps(self, x: Tensor) -> Tensor:
        """Anomaly maps ``(N, H, W)``, higher = more anomalous."""
        return self(x)[1]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raw = fastflow_map(self.backbone, self.flows, x, self.input_size, self.reflect_margin)
        maps = gaussian_smooth(raw, self.smooth_sigma)
        scored = maps if self.image_score_sigma == self.smooth_sigma else gaussian_smooth(raw, self.image_score_sigma)
        return -aggregate_map_tensor(scored, self.image_score), maps
