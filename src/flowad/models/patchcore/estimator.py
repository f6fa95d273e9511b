"""PatchCore (Roth et al., "Towards Total Recall in Industrial Anomaly Detection", CVPR 2022): a
memory bank of locally aware patch features from normal images, thinned by a greedy coreset, and
the distance of each test patch to its nearest bank feature as the anomaly map.

Nothing is trained: fitting is one pass of the frozen backbone over the training images and the
coreset selection. The memory is bounded twice: at most ``max_patches`` candidate patches are kept
while the images stream through the backbone (a uniform sample per image when there are more), and
the bank holds ``coreset_ratio`` of them, at most ``max_bank``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from flowad.backbones.binding import BackboneBinding
from flowad.core import progress
from flowad.core.image_estimator import IMAGE_SCORES, BaseImageDetector
from flowad.core.image_maps import backbone_input
from flowad.core.training import resolve_device
from flowad.models.patchcore.torch_model import PatchCoreScoring, greedy_coreset, local_patches, nearest_in_bank

__all__ = ["PatchCoreDetector"]


class PatchCoreDetector(BackboneBinding, BaseImageDetector):
    """PatchCore anomaly maps: nearest-neighbour distances to a coreset of normal patch features.

    Args:
        backbone: The feature extractor (:mod:`flowad.backbones`), as for
            :class:`~flowad.models.FastFlowDetector`; the model file records it.
        stages: Two (or more) backbone stages whose maps are combined per patch; None: the stages
            at strides 8 and 16 of a named backbone (the middle of the network, as in the paper).
        input_size: Shorter image side after a bilinear resize, before the backbone; None keeps the size.
        reflect_margin: Pixels mirrored outwards on every side before the backbone, cut from the
            maps again; a multiple of the finest stage's stride. Without it the backbone's zero
            padding makes borders look unlike any training patch (0: none).
        coreset_ratio: Share of the candidate patches kept in the memory bank (0 < r <= 1).
        max_bank: Most features in the bank.
        max_patches: Most candidate patches kept from the training images for the coreset.
        projection_dim: Dimensions of the random projection the coreset selection measures
            distances in, when the features have more.
        reweight_neighbours: ``b`` of the image-score reweighting: bank neighbours of the nearest feature.
        smooth_sigma: Gaussian blur of the map, in pixels of the input images (0: none).
        image_score: ``"reweighted"`` (the paper's), ``"max"`` or ``"top1_mean"`` of the map.
        contamination: Share of held-out training images above the threshold (``"auto"``: 1%).
        batch_size: Images per backbone pass.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        random_state: Seed of the threshold split, the patch sample and the coreset's first pick.

    Example:
        >>> import numpy as np
        >>> images = np.random.default_rng(0).random((12, 64, 64, 3)).astype(np.float32)
        >>> detector = PatchCoreDetector(input_size=None).fit(images)      # doctest: +SKIP
        >>> detector.anomaly_map(images[:2]).shape                          # doctest: +SKIP
        (2, 64, 64)
    """

    image_scores = ("reweighted", *IMAGE_SCORES)
    default_strides = (8, 16)

    def __init__(
        self,
        backbone="efficientnet_lite0",
        stages: tuple[str, ...] | None = None,
        input_size: int | None = 256,
        reflect_margin: int = 32,
        coreset_ratio: float = 0.1,
        max_bank: int = 16_384,
        max_patches: int = 200_000,
        projection_dim: int = 128,
        reweight_neighbours: int = 9,
        smooth_sigma: float = 4.0,
        image_score: str = "reweighted",
        contamination: float | str = "auto",
        batch_size: int = 16,
        device: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.backbone = backbone
        self.stages = stages
        self.input_size = input_size
        self.reflect_margin = reflect_margin
        self.coreset_ratio = coreset_ratio
        self.max_bank = max_bank
        self.max_patches = max_patches
        self.projection_dim = projection_dim
        self.reweight_neighbours = reweight_neighbours
        self.smooth_sigma = smooth_sigma
        self.image_score = image_score
        self.contamination = contamination
        self.batch_size = batch_size
        self.device = device
        self.random_state = random_state

    def _check_params(self) -> None:
        self._check_backbone_params()
        if not 0 < float(self.coreset_ratio) <= 1:
            raise ValueError(f"coreset_ratio must be in (0, 1], got {self.coreset_ratio!r}")
        self._check_at_least_one("max_bank", "max_patches", "projection_dim", "reweight_neighbours")

    def _patches(self, x: Tensor) -> Tensor:
        """Locally aware patch features ``(N, D, h, w)`` of prepared images, margin cut off."""
        backbone = self._backbone()
        patches = local_patches(backbone(backbone_input(x, self.input_size, self.reflect_margin)))
        k = self.reflect_margin // backbone.strides[0]
        return patches[:, :, k : patches.shape[2] - k, k : patches.shape[3] - k] if k else patches

    def _fit(self, x: Tensor, rng: np.random.Generator) -> None:
        self._check_params()
        self.device_ = resolve_device(self.device)
        backbone = self._bind_backbone()
        self._check_margin(backbone.strides[0])
        batch = int(self.batch_size)
        candidates, per_image = [], None
        with torch.no_grad():
            for start in range(0, len(x), batch):
                patches = self._patches(x[start : start + batch].to(self.device_))
                n, d, h, w = patches.shape
                flat = patches.permute(0, 2, 3, 1).reshape(n, h * w, d)
                if per_image is None:  # how many patches of each image the candidate pool can hold
                    per_image = max(1, min(h * w, int(self.max_patches) // len(x)))
                if per_image < h * w:
                    keep = torch.from_numpy(np.stack([rng.choice(h * w, per_image, replace=False) for _ in range(n)]))
                    flat = torch.gather(flat, 1, keep.to(flat.device)[..., None].expand(-1, -1, d))
                candidates.append(flat.reshape(-1, d).cpu())
                progress.report("features", min(start + batch, len(x)), len(x))
        pool = torch.cat(candidates)
        self.n_candidates_ = len(pool)
        size = min(int(self.max_bank), max(1, int(round(float(self.coreset_ratio) * len(pool)))))
        chosen = greedy_coreset(pool, size, int(self.projection_dim), int(rng.integers(2**31 - 1)))
        self.memory_bank_ = pool[chosen].contiguous()
        self.bank_neighbours_ = nearest_in_bank(self.memory_bank_, self.memory_bank_, int(self.reweight_neighbours))[1]
        self.scoring_ = None

    def _graph(self) -> PatchCoreScoring:
        """The scoring graph (:mod:`~flowad.models.patchcore.torch_model`) that every score and map runs."""
        if getattr(self, "scoring_", None) is None:
            self.scoring_ = PatchCoreScoring(self._backbone(), self.memory_bank_.to(self.device_),
                                             self.bank_neighbours_.to(self.device_), self.input_size,
                                             self.reflect_margin, self.smooth_sigma, self.image_score)
        return self.scoring_

    def _scores_and_maps(self, x: Tensor, batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        return self._run_graph(self._graph(), x, int(batch_size or self.batch_size))

    def _maps(self, x: Tensor) -> np.ndarray:
        return self._scores_and_maps(x)[1]

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state.update(self._backbone_state(), n_candidates_=int(self.n_candidates_))
        arrays["memory_bank"] = self.memory_bank_.cpu().numpy()
        arrays["bank_neighbours"] = self.bank_neighbours_.cpu().numpy().astype(np.int64)
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.device_ = resolve_device(self.device)
        self._load_backbone_state(state)
        self.n_candidates_ = int(state["n_candidates_"])
        bank, neighbours = arrays["memory_bank"], arrays["bank_neighbours"]
        if bank.ndim != 2 or neighbours.ndim != 2 or len(neighbours) != len(bank):
            raise ValueError(f"memory bank {bank.shape} and its neighbours {neighbours.shape} do not fit")
        self.memory_bank_ = torch.from_numpy(bank.astype(np.float32, copy=True))
        self.bank_neighbours_ = torch.from_numpy(neighbours.astype(np.int64, copy=True))
        self.scoring_ = None
