"""The contract every image detector follows.

``fit(images)`` on normal images only; ``anomaly_map(images)`` gives ``(N, H, W)`` float maps at
the input resolution (higher = more anomalous); ``score_samples(images)`` gives one value per image,
higher = more normal (minus an aggregate of the map); ``decision_function`` and ``predict`` use the
threshold ``offset_`` taken from held-out training images, as for the tabular detectors.

``images`` is an ``(N, H, W)`` (grey) or ``(N, H, W, 3)`` (colour) array, ``uint8`` (0..255) or
float (0..1), exactly what :func:`flowad.datasets.load_image_folder` returns.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator

from flowad.core import progress
from flowad.core.calibration import Calibration
from flowad.core.estimator import contamination_value, finite_scores
from flowad.core.splits import HOLDOUT_FRACTION
from flowad.core.training import TrainingConfig

__all__ = ["IMAGE_SCORES", "BaseImageDetector", "aggregate_maps", "as_image_tensor"]

#: How a map becomes one image score: its maximum, or the mean of its top 1% of pixels.
IMAGE_SCORES = ("max", "top1_mean")


def as_image_tensor(images, name: str = "images") -> torch.Tensor:
    """Images as a float32 tensor ``(N, C, H, W)`` with values in [0, 1].

    Args:
        images: ``(N, H, W)`` or ``(N, H, W, C)`` with ``C`` in {1, 3}; ``uint8`` or float in [0, 1].
        name: Argument name used in error messages.
    """
    if not isinstance(images, np.ndarray):
        images = np.asarray(images)
    if images.dtype == object or not (np.issubdtype(images.dtype, np.number) or images.dtype == bool):
        raise TypeError(f"{name} must be a numeric array, got dtype {images.dtype}")
    if images.ndim == 4 and images.shape[-1] not in (1, 3):
        raise ValueError(f"{name} must be (N, H, W) or (N, H, W, 3), got shape {images.shape}")
    if images.ndim not in (3, 4):
        raise ValueError(f"{name} must be (N, H, W) or (N, H, W, 3), got shape {images.shape}")
    if images.shape[0] == 0 or images.shape[1] < 1 or images.shape[2] < 1:
        raise ValueError(f"{name} must hold at least one non-empty image, got shape {images.shape}")
    if images.dtype == np.uint8:
        x = images.astype(np.float32) / 255.0
    else:
        x = images.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        if x.min() < -1e-6 or x.max() > 1 + 1e-6:
            raise ValueError(f"float {name} must lie in [0, 1] (or pass uint8 0..255), got range "
                             f"[{x.min():.3g}, {x.max():.3g}]")
    x = x[..., None] if x.ndim == 3 else x
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def aggregate_maps(maps: np.ndarray, how: str = "max") -> np.ndarray:
    """One anomaly value per map: ``(N, H, W) -> (N,)`` by ``how`` in :data:`IMAGE_SCORES`."""
    flat = maps.reshape(len(maps), -1)
    if how == "max":
        return flat.max(axis=1)
    if how == "top1_mean":
        k = max(1, int(np.ceil(0.01 * flat.shape[1])))
        return np.partition(flat, flat.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
    raise ValueError(f"image_score must be one of {IMAGE_SCORES}, got {how!r}")


class BaseImageDetector(BaseEstimator):
    """Shared input checks, thresholding and scoring; subclasses implement ``_fit(x)`` on a tensor
    ``(N, C, H, W)`` and ``_maps(x) -> (N, H, W)`` NumPy maps (higher = more anomalous).

    Subclass parameters must include ``contamination``, ``image_score``, ``smooth_sigma`` and
    ``random_state``; models trained by gradient descent also the training settings ``max_epochs``,
    ``batch_size``, ``learning_rate``, ``weight_decay``, ``patience``.
    """

    #: Share of training images held out to set the threshold (when there are at least 10).
    threshold_fraction = HOLDOUT_FRACTION

    #: The ``image_score`` values this model accepts.
    image_scores = IMAGE_SCORES

    def _check_common_params(self) -> None:
        contamination_value(self.contamination)
        if self.image_score not in self.image_scores:
            raise ValueError(f"image_score must be one of {self.image_scores}, got {self.image_score!r}")
        self._check_at_least_one(*(n for n in ("max_epochs", "batch_size", "patience") if hasattr(self, n)))
        if self.smooth_sigma < 0:
            raise ValueError(f"smooth_sigma must be >= 0, got {self.smooth_sigma!r}")

    def _check_at_least_one(self, *names: str) -> None:
        """ValueError naming the first of the integer parameters ``names`` that is below 1."""
        for name in names:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")

    def _training_config(self) -> TrainingConfig:
        return TrainingConfig(max_epochs=int(self.max_epochs), batch_size=int(self.batch_size),
                              learning_rate=self.learning_rate, weight_decay=self.weight_decay,
                              patience=int(self.patience))

    def fit(self, images, y=None, *, negative_images=None, negative_masks=None):
        """Fit on normal images (and, where the model supports it, on images with known anomalies).

        Args:
            images: ``(N, H, W)`` or ``(N, H, W, 3)``, uint8 or float in [0, 1]; normal images only.
            y: Ignored.
            negative_images: Optional ``(M, H, W[, 3])`` images with anomalies (real or pasted
                synthetic ones) for two-class training; only models with ``supports_negatives``.
            negative_masks: ``(M, H, W)`` bool, where those anomalies are.

        Returns:
            ``self``.
        """
        self._check_common_params()
        x = as_image_tensor(images)
        self.n_channels_ = int(x.shape[1])
        negatives = None
        if negative_images is not None or negative_masks is not None:
            negatives = self._checked_negatives(negative_images, negative_masks)
        rng = np.random.default_rng(self.random_state)
        held = np.zeros(len(x), dtype=bool)
        if len(x) >= 10:
            held[rng.choice(len(x), max(1, int(round(self.threshold_fraction * len(x)))), replace=False)] = True
        if negatives is None:
            self._fit(x[torch.from_numpy(~held)], rng)
        else:
            self._fit(x[torch.from_numpy(~held)], rng, negatives)
        threshold_images = x[torch.from_numpy(held)] if held.any() else x
        method = "split" if held.any() else "in-sample"
        self.calibration_ = Calibration.from_scores(self._score(threshold_images), method)
        self.offset_ = self.calibration_.offset(contamination_value(self.contamination))
        return self

    #: Whether ``fit`` accepts ``negative_images`` (two-class training).
    supports_negatives = False

    def _checked_negatives(self, images, masks) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.supports_negatives:
            raise ValueError(f"{type(self).__name__} trains on normal images only; negative_images is not supported")
        if images is None or masks is None:
            raise ValueError("negative_images and negative_masks must be given together")
        x = as_image_tensor(images, "negative_images")
        m = np.asarray(masks)
        if m.shape != (x.shape[0], x.shape[2], x.shape[3]):
            raise ValueError(f"negative_masks must have shape {(x.shape[0], x.shape[2], x.shape[3])}, got {m.shape}")
        if x.shape[1] != self.n_channels_:
            raise ValueError(f"negative_images must have {self.n_channels_} channel(s) like images, got {x.shape[1]}")
        return x, torch.from_numpy(m.astype(np.float32))

    def _checked(self, images) -> torch.Tensor:
        if not hasattr(self, "offset_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet; call fit first")
        x = as_image_tensor(images)
        if x.shape[1] != self.n_channels_:
            raise ValueError(f"images must have {self.n_channels_} channel(s) like the training images, "
                             f"got {x.shape[1]}")
        return x

    def anomaly_map(self, images) -> np.ndarray:
        """Per-pixel anomaly maps at the input resolution, ``(N, H, W)``; higher = more anomalous.
        Never NaN or infinite: a value too large for float64 becomes the largest float."""
        return self._finite_maps(self._checked(images))

    def _finite_maps(self, x: torch.Tensor) -> np.ndarray:
        return -finite_scores(-self._maps(x))

    def score_samples(self, images) -> np.ndarray:
        """Normality per image, ``(N,)``: minus the map's aggregate (``image_score``)."""
        return self._score(self._checked(images))

    def score_and_map(self, images) -> tuple[np.ndarray, np.ndarray]:
        """``(score_samples(images), anomaly_map(images))`` from one pass."""
        scores, maps = self._scores_and_maps(self._checked(images))
        return finite_scores(scores), -finite_scores(-maps)

    @torch.no_grad()
    def _run_graph(self, graph, x: torch.Tensor, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Image scores ``(N,)`` and maps ``(N, H, W)`` (float64) from a scoring graph (a module
        ``images -> (score, map)``) run ``batch_size`` images at a time on ``device_``, reporting
        progress as ``"scoring"``."""
        scores, maps = [], []
        for start in range(0, len(x), batch_size):
            score, m = graph(x[start : start + batch_size].to(self.device_))
            scores.append(score.cpu().numpy())
            maps.append(m.cpu().numpy())
            progress.report("scoring", min(start + batch_size, len(x)), len(x))
        return np.concatenate(scores).astype(np.float64), np.concatenate(maps).astype(np.float64)

    def _score(self, x: torch.Tensor) -> np.ndarray:
        return finite_scores(self._scores_and_maps(x)[0])

    def _scores_and_maps(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Image scores ``(N,)`` and maps ``(N, H, W)``; models with a scoring graph compute both in it."""
        maps = self._finite_maps(x)
        return -aggregate_maps(maps, self.image_score), maps

    def decision_function(self, images) -> np.ndarray:
        """``score_samples(images) - offset_``, ``(N,)``: negative for predicted anomalies."""
        return self.score_samples(images) - self.offset_

    def predict(self, images) -> np.ndarray:
        """+1 for images predicted normal, -1 for anomalous, ``(N,)``."""
        return np.where(self.decision_function(images) < 0, -1, 1)

    def _fit(self, x: torch.Tensor, rng: np.random.Generator) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _maps(self, x: torch.Tensor) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def p_values(self, images) -> np.ndarray:
        """Conformal p-value of each image, ``(N,)`` (:mod:`flowad.core.calibration`), from the
        held-out training images; ``p_value <= contamination`` is a predicted anomaly."""
        return self.p_values_of_scores(self.score_samples(images))

    def p_values_of_scores(self, scores: np.ndarray) -> np.ndarray:
        """p-values ``(N,)`` of image scores ``(N,)`` that :meth:`score_samples` returned."""
        if getattr(self, "calibration_", None) is None:
            raise ValueError(f"this {type(self).__name__} has no calibration scores (a model file from before "
                             f"flowad 0.2); refit it to get p-values")
        return self.calibration_.p_values(scores)

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state = {"offset_": float(self.offset_), "n_channels_": int(self.n_channels_)}
        calibration = getattr(self, "calibration_", None)
        if calibration is None:
            return state, {}
        return {**state, "calibration_method_": calibration.method}, {"calibration.scores": calibration.scores}

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        method = state.get("calibration_method_")
        scores = arrays.get("calibration.scores")
        self.calibration_ = Calibration(np.asarray(scores, dtype=np.float64), method) if method else None
        self.offset_ = float(state["offset_"])
        self.n_channels_ = int(state["n_channels_"])
