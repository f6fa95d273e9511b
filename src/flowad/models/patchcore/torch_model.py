"""PatchCore's pieces as torch code: locally aware patch features, greedy coreset selection,
nearest-neighbour distances to the memory bank, and the scoring graph (images in, image scores
and anomaly maps out) that ``score_samples``, ``anomaly_map`` and the ONNX export all run.

Example:
    >>> import torch
    >>> class Tiny(torch.nn.Module):              # any backbone with ``strides`` and a list of maps
    ...     strides = (4, 8)
    ...     def forward(self, x):
    ...         return [torch.nn.functional.avg_pool2d(x, 4), torch.nn.functional.avg_pool2d(x, 8)]
    >>> patches = local_patches(Tiny()(torch.rand(2, 3, 32, 32)))
    >>> tuple(patches.shape)                      # (N, 3 + 3 channels, finest grid)
    (2, 6, 8, 8)
    >>> bank = patches.permute(0, 2, 3, 1).reshape(-1, 6)
    >>> graph = PatchCoreScoring(Tiny(), bank, nearest_in_bank(bank, bank, k=3)[1], None, 0)
    >>> score, maps = graph(torch.rand(1, 3, 32, 32))
    >>> tuple(score.shape), tuple(maps.shape)
    ((1,), (1, 32, 32))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from flowad.core.image_maps import aggregate_map_tensor, backbone_input, gaussian_smooth, upsample

__all__ = ["PatchCoreScoring", "greedy_coreset", "local_patches", "nearest_in_bank"]


def local_patches(maps: list[Tensor], kernel: int = 3) -> Tensor:
    """Locally aware patch features (Roth et al., section 3.1): each stage's map averaged over
    ``kernel`` x ``kernel`` neighbourhoods, the deeper maps resized (bilinear) to the finest map's
    grid, concatenated over channels: list of ``(N, C_s, h_s, w_s)`` -> ``(N, sum C_s, h_0, w_0)``."""
    size = maps[0].shape[2:]
    pooled = []
    for m in maps:
        m = F.avg_pool2d(m, kernel, stride=1, padding=kernel // 2, count_include_pad=False)
        if m.shape[2:] != size:
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        pooled.append(m)
    return torch.cat(pooled, dim=1)


def _shifted_distances(a: Tensor, b: Tensor, b_norms: Tensor) -> Tensor:
    """``||a_i - b_j||^2 - ||a_i||^2`` ``(n, m)`` in one fused matrix product (``addmm``): the row
    term does not change which ``b_j`` is nearest, so it is added after the minimum or top-k."""
    return torch.addmm(b_norms, a, b.T, beta=1.0, alpha=-2.0)


def _add_row_norms(shifted: Tensor, a: Tensor) -> Tensor:
    """Adds ``||a_i||^2`` back to the selected entries ``(n, k)`` or ``(n,)``, clamped at 0 against
    rounding."""
    norms = (a * a).sum(1)
    return (shifted + (norms[:, None] if shifted.dim() == 2 else norms)).clamp_min(0.0)


def nearest_in_bank(queries: Tensor, bank: Tensor, k: int = 1, chunk: int = 2048) -> tuple[Tensor, Tensor]:
    """Euclidean distances ``(n, k)`` and indices ``(n, k)`` of each query's ``k`` nearest bank rows,
    nearest first; queries ``(n, D)``, bank ``(M, D)``; ``chunk`` queries at a time bound the memory."""
    norms = (bank * bank).sum(1)
    k = min(k, len(bank))
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        q = queries[start : start + chunk]
        values, index = torch.topk(_shifted_distances(q, bank, norms), k, dim=1, largest=False)
        distances.append(_add_row_norms(values, q).sqrt())
        indices.append(index)
    return torch.cat(distances), torch.cat(indices)


def greedy_coreset(features: Tensor, size: int, projection_dim: int = 128, seed: int = 0) -> Tensor:
    """Indices ``(size,)`` of a greedy k-center coreset of ``features`` ``(n, D)`` (Roth et al.,
    algorithm 1): start from a random row, then repeatedly add the row farthest from those chosen.
    Distances are measured after a Gaussian random projection to ``projection_dim`` dimensions when
    ``D`` is larger (Johnson-Lindenstrauss: the choice barely changes, the cost falls)."""
    n, dim = features.shape
    size = max(1, min(int(size), n))
    generator = torch.Generator(device="cpu").manual_seed(seed)
    x = features
    if dim > projection_dim:
        projection = torch.randn(dim, projection_dim, generator=generator) / math.sqrt(projection_dim)
        x = features @ projection.to(features)
    x = x.contiguous()
    norms = (x * x).sum(1)
    chosen = torch.empty(size, dtype=torch.long)
    chosen[0] = int(torch.randint(n, (1,), generator=generator))
    nearest = torch.full((n,), float("inf"), dtype=x.dtype, device=x.device)
    for i in range(size):
        if i:
            chosen[i] = int(torch.argmax(nearest))
        c = int(chosen[i])  # ||x - x_c||^2 = ||x||^2 - 2 x.x_c + ||x_c||^2, one matrix-vector product
        torch.minimum(nearest, torch.addmv(norms, x, x[c], alpha=-2.0).add_(norms[c]), out=nearest)
    return chosen


class PatchCoreScoring(nn.Module):
    """Images ``(N, C, H, W)`` float32 in [0, 1] -> ``(score (N,), anomaly_map (N, H, W))``.

    The map is each patch's distance to its nearest memory-bank feature, margin cut off, resized
    to the image and blurred; the image score is minus the largest patch distance, reweighted
    (``image_score="reweighted"``, Roth et al. eq. 7) by one minus the softmax weight of its
    nearest bank feature among that feature's ``b`` nearest bank neighbours: a patch whose nearest
    normal feature sits in a dense region counts more than one next to a lone outlier of the bank.

    Args:
        backbone: Feature extractor with ``strides``; ``backbone(x)`` is a list of maps.
        bank: Memory bank ``(M, D)``.
        bank_neighbours: ``(M, b)`` indices of each bank feature's ``b`` nearest bank features
            (itself first).
        input_size: As for :class:`~flowad.models.PatchCoreDetector`.
        reflect_margin: As for :class:`~flowad.models.PatchCoreDetector`.
        smooth_sigma: Gaussian blur of the map in pixels (0: none).
        image_score: ``"reweighted"``, ``"max"`` or ``"top1_mean"``.
    """

    def __init__(self, backbone: nn.Module, bank: Tensor, bank_neighbours: Tensor, input_size: int | None,
                 reflect_margin: int, smooth_sigma: float = 4.0, image_score: str = "reweighted") -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("bank", bank)
        self.register_buffer("bank_norms", (bank * bank).sum(1))
        self.register_buffer("bank_neighbours", bank_neighbours)
        self.input_size = input_size
        self.reflect_margin = int(reflect_margin)
        self.smooth_sigma = float(smooth_sigma)
        self.image_score = image_score
        self.chunk = max(1, 2**24 // max(1, len(bank)))  # patches per distance block (64 MB of float32)

    def patch_distances(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(distances (N, h, w), nearest bank index (N, h, w), patch features (N, h, w, D))``,
        margin cut off."""
        maps = self.backbone(backbone_input(x, self.input_size, self.reflect_margin))
        patches = local_patches(maps)
        k = self.reflect_margin // self.backbone.strides[0]
        if k:
            patches = patches[:, :, k : patches.shape[2] - k, k : patches.shape[3] - k]
        n, d, h, w = patches.shape
        flat = patches.permute(0, 2, 3, 1).reshape(n * h * w, d)
        if torch.compiler.is_exporting() or len(flat) <= self.chunk:
            values, index = _shifted_distances(flat, self.bank, self.bank_norms).min(dim=1)
        else:  # bounded memory: chunk x bank distances at a time
            parts = [_shifted_distances(q, self.bank, self.bank_norms).min(dim=1) for q in flat.split(self.chunk)]
            values, index = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        values = _add_row_norms(values, flat)
        return values.sqrt().reshape(n, h, w), index.reshape(n, h, w), flat.reshape(n, h, w, d)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        distances, nearest, patches = self.patch_distances(x)
        maps = gaussian_smooth(upsample(distances, (x.shape[2], x.shape[3])), self.smooth_sigma)
        n = distances.shape[0]
        flat = distances.reshape(n, -1)
        if self.image_score == "reweighted":
            top, where = flat.max(dim=1)
            test = patches.reshape(n, -1, patches.shape[-1])[torch.arange(n), where]        # (N, D)
            neighbours = self.bank_neighbours[nearest.reshape(n, -1)[torch.arange(n), where]]  # (N, b)
            gaps = (self.bank[neighbours] - test[:, None, :]).pow(2).sum(-1).sqrt()          # (N, b)
            weight = 1.0 - torch.softmax(gaps, dim=1)[:, 0]
            aggregate = weight * top
        else:
            aggregate = aggregate_map_tensor(maps, self.image_score)
        return -aggregate, maps
