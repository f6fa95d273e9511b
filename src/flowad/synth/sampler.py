"""``PatchSampler``: a masked autoregressive flow on patches of normal images, sampled in its
low-likelihood region to make synthetic anomalies.

Square regions of random size are cut from the normal images and resized to ``patch_size``, so the
patches carry structure at several scales. A :class:`~flowad.models.tabular_flow.estimator.FlowDetector` (MAF) fitted
to the flattened 8-bit patches owns preprocessing (dequantisation included), training and early
stopping. Patches are drawn away from the typical set in three ways:

- ``"temperature"``: ``z ~ N(0, T^2 I)`` with ``T > 1``, mapped back through the inverse flow
  (sampling at a temperature as in Kingma & Dhariwal, "Glow: Generative Flow with Invertible 1x1
  Convolutions", arXiv:1807.03039, here with ``T > 1`` to leave the typical set);
- ``"tail"``: ``||z||^2`` drawn from the chi-square tail beyond its ``quantile`` (for a perfectly
  trained flow ``||z||^2`` of normal patches is chi-square with ``d`` degrees of freedom), the
  direction uniform on the sphere;
- ``"rejection"``: proposals at a temperature are kept when their log-likelihood lies in a band of
  quantiles of the training patches' log-likelihoods (``BANDS``: ``"boundary"`` just below the
  normal patches, ``"far"`` below almost all of them).

MAF: Papamakarios et al., "Masked Autoregressive Flow for Density Estimation", arXiv:1705.07057;
sampling inverts it one dimension at a time (``d`` network passes per transform).
"""

from __future__ import annotations

import dataclasses
import logging
from numbers import Integral, Real

import numpy as np
import torch
from scipy.stats import chi2
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from flowad.core.estimator import prefixed, unprefixed
from flowad.core.training import EpochCallback
from flowad.datasets.defects import size_range
from flowad.models.tabular_flow import FlowDetector, FlowOptions
from flowad.synth.patches import check_images, random_patches

__all__ = ["BANDS", "METHODS", "PatchSampler"]

logger = logging.getLogger(__name__)

#: Sampling methods of :meth:`PatchSampler.sample`.
METHODS = ("temperature", "tail", "rejection")

#: Named quantile bands of the training patches' log-likelihoods for ``method="rejection"``.
BANDS: dict[str, tuple[float, float]] = {"boundary": (0.001, 0.05), "far": (0.0, 0.001)}

#: Temperatures tried by the automatic choice of ``method="rejection"``.
_PILOT_TEMPERATURES = (1.0, 1.1, 1.2, 1.35, 1.5, 1.75, 2.0, 2.5, 3.0)
_PILOT_SIZE = 256
_DEFAULT_TEMPERATURE = 1.5


class PatchSampler(BaseEstimator):
    """A MAF on image patches that draws patches from its own low-likelihood region.

    Args:
        patch_size: Side ``p`` of the patches; the flow has ``d = p * p * C`` dimensions.
        region_size: Inclusive range of the sides of the regions cut from the images before they are
            resized to ``p`` (several scales of structure per patch).
        max_patches: Training patches drawn from the images.
        transforms: MAF depth.
        hidden_features: Hidden widths of each transform's conditioner.
        max_epochs: Most passes over the training data.
        batch_size: Samples per optimisation step.
        learning_rate: Adam's learning rate.
        patience: Epochs without a better validation loss before training stops.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        random_state: Seed of the patches and of training; ``None`` for fresh randomness.

    Attributes:
        detector_: The fitted :class:`~flowad.models.tabular_flow.estimator.FlowDetector` (``pca_components=None``,
            so the flow sees every pixel and can be inverted exactly).
        train_log_likelihood_: Shape ``(max_patches,)``, sorted log-likelihoods (nats, pixel units
            0..255) of the training patches; the bands of ``"rejection"`` are its quantiles.
        offset_: The detector's threshold: the 1% quantile of held-out patch log-likelihoods.
        n_channels_: 1 (gray) or 3 (RGB).
        n_features_: ``d``.
    """

    _parameter_constraints: dict = {
        "patch_size": [Interval(Integral, 2, None, closed="left")],
        "region_size": ["array-like", Interval(Integral, 1, None, closed="left")],
        "max_patches": [Interval(Integral, 2, None, closed="left")],
        "transforms": [Interval(Integral, 1, None, closed="left")],
        "hidden_features": ["array-like"],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        patch_size: int = 8,
        region_size: tuple[int, int] = (8, 32),
        max_patches: int = 20_000,
        transforms: int = 5,
        hidden_features: tuple[int, ...] = (128, 128),
        max_epochs: int = 50,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        patience: int = 10,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.patch_size = patch_size
        self.region_size = region_size
        self.max_patches = max_patches
        self.transforms = transforms
        self.hidden_features = hidden_features
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.device = device
        self.random_state = random_state

    def _detector(self, seed: int | None) -> FlowDetector:
        return FlowDetector(
            "maf", transforms=self.transforms, hidden_features=tuple(self.hidden_features),
            max_epochs=self.max_epochs, learning_rate=self.learning_rate, device=self.device, random_state=seed,
            options=FlowOptions(pca_components=None, batch_size=int(self.batch_size), patience=int(self.patience)),
        )  # fmt: skip

    def fit(self, images, y=None, *, callback: EpochCallback | None = None) -> PatchSampler:
        """Cut ``max_patches`` patches from normal images and fit the flow to them.

        Args:
            images: Normal images, shape ``(N, H, W)`` or ``(N, H, W, 3)``, uint8.
            y: Ignored.
            callback: Called after each epoch with ``(epoch, train_loss, validation_loss)``.

        Returns:
            ``self``.
        """
        self._validate_params()
        images = check_images(images)
        size_range(self.region_size, "region_size")
        rng = np.random.default_rng(self.random_state)
        patches = random_patches(images, int(self.max_patches), int(self.patch_size), self.region_size, rng)
        flat = patches.reshape(len(patches), -1).astype(np.float64)
        seed = int(rng.integers(2**31 - 1))
        self.detector_ = self._detector(seed).fit(flat, callback=callback)
        self.n_channels_ = 1 if images.ndim == 3 else images.shape[-1]
        self.n_features_ = flat.shape[1]
        self.train_log_likelihood_ = np.sort(self.detector_.log_likelihood(flat))
        self.offset_ = float(self.detector_.offset_)
        logger.info("patch flow fitted on %d patches of %dx%d in %d epochs", len(flat), self.patch_size,
                    self.patch_size, self.detector_.n_epochs_)  # fmt: skip
        return self

    # ------------------------------------------------------------- patches
    @property
    def patch_shape(self) -> tuple[int, ...]:
        """``(p, p)`` for gray, ``(p, p, C)`` for colour patches."""
        check_is_fitted(self, "detector_")
        p = int(self.patch_size)
        return (p, p) if self.n_channels_ == 1 else (p, p, self.n_channels_)

    def _flat(self, patches, name: str = "patches") -> np.ndarray:
        patches = np.asarray(patches)
        if patches.ndim < 2 or patches.shape[1:] != self.patch_shape:
            shape = ", ".join(map(str, self.patch_shape))
            raise ValueError(f"{name} must have shape (N, {shape}), got {patches.shape}")
        return patches.reshape(len(patches), -1).astype(np.float64)

    def log_likelihood(self, patches) -> np.ndarray:
        """Log-density of each patch in nats (pixel units 0..255), shape ``(N,)``.

        Args:
            patches: Shape ``(N, p, p[, C])``.
        """
        return self.detector_.log_likelihood(self._flat(patches))

    def latent_codes(self, patches) -> np.ndarray:
        """Latent codes ``z`` of patches ``(N, p, p[, C])``, shape ``(N, d)``."""
        return self.detector_.latent_codes(self._flat(patches))

    def decode(self, z) -> np.ndarray:
        """Map latent codes back to patches: inverse flow, inverse standardisation, round, clip to 0..255.

        Args:
            z: Shape ``(N, d)``.

        Returns:
            Patches of shape ``(N, p, p[, C])``, uint8.
        """
        return self._decode(z)[0]

    def _decode(self, z) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`decode` plus the share of each patch's pixels that had to be clipped, shape ``(N,)``."""
        check_is_fitted(self, "detector_")
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.n_features_:
            raise ValueError(f"z must have shape (N, {self.n_features_}), got {z.shape}")
        det = self.detector_
        scaler = det.scaler_
        with torch.no_grad():
            transform = det.flow_().transform
            parts = [transform.inv(torch.as_tensor(z[i : i + 4096], device=det.device_)).cpu().numpy()
                     for i in range(0, len(z), 4096)]  # fmt: skip
        xs = np.concatenate(parts) if parts else np.zeros((0, max(scaler.n_model_features, 1)))
        x = np.tile(scaler.center, (len(z), 1))
        if scaler.n_model_features:
            x[:, scaler.varying] = xs * scaler.scale[scaler.varying] + scaler.center[scaler.varying]
        x = np.rint(np.nan_to_num(x, nan=-1.0, posinf=256.0, neginf=-1.0))
        clipped = ((x < 0) | (x > 255)).mean(axis=1)
        return np.clip(x, 0, 255).astype(np.uint8).reshape(len(z), *self.patch_shape), clipped

    # ------------------------------------------------------------ sampling
    def draw_latent(self, n: int, method: str = "temperature", *, temperature: float | None = None,
                    quantile: float = 0.99, random_state=None) -> np.ndarray:
        """Latent codes for ``"temperature"`` (``N(0, T^2 I)``) or ``"tail"`` (chi-square tail).

        Args:
            n: Number of codes, >= 0.
            method: ``"temperature"`` or ``"tail"``.
            temperature: ``T > 0`` for ``"temperature"`` (default 1.5); must be None for ``"tail"``.
            quantile: For ``"tail"``: ``||z||^2 > chi2.ppf(quantile, d)``, in (0, 1).
            random_state: Seed or :class:`numpy.random.Generator`.

        Returns:
            Shape ``(n, d)``.
        """
        check_is_fitted(self, "detector_")
        n = _count(n)
        rng = np.random.default_rng(random_state)
        d = self.n_features_
        if method == "temperature":
            return _temperature(temperature) * rng.standard_normal((n, d))
        if method == "tail":
            if temperature is not None:
                raise ValueError("temperature does not apply to method='tail' (its radius comes from quantile)")
            if not 0.0 < quantile < 1.0:
                raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
            radius2 = chi2.isf((1.0 - quantile) * (1.0 - rng.random(n)), d)  # u in (0, 1]: r^2 beyond the cut
            direction = rng.standard_normal((n, d))
            direction /= np.linalg.norm(direction, axis=1, keepdims=True)
            return np.sqrt(radius2)[:, None] * direction
        raise ValueError(f"method must be 'temperature' or 'tail' to draw latent codes, got {method!r}")

    def band_limits(self, band: tuple[float, float] | str) -> tuple[float, float]:
        """Log-likelihood limits (nats) of a quantile band of the training patches.

        Args:
            band: ``(lo, hi)`` quantiles, ``0 <= lo < hi <= 1``, or a name from :data:`BANDS`;
                ``lo == 0`` gives ``-inf``.
        """
        check_is_fitted(self, "detector_")
        lo, hi = _band(band)
        ll = self.train_log_likelihood_
        return (-np.inf if lo == 0 else float(np.quantile(ll, lo))), float(np.quantile(ll, hi))

    def sample(
        self,
        n: int,
        method: str = "temperature",
        *,
        temperature: float | None = None,
        quantile: float = 0.99,
        band: tuple[float, float] | str = "boundary",
        max_clipped: float = 0.0,
        max_tries: int = 100,
        random_state=None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Patches from the flow's low-likelihood region.

        Clipping to 0..255 moves a pixel where the flow saw no data (the inverse can even diverge into
        saturated noise): on brick, default flow, clipped patches kept, 1% of the patches at ``T = 1``
        and 20% at ``T = 2`` had log-likelihoods near ``-1e25``. So patches with more than ``max_clipped``
        of their pixels outside 0..255 are drawn again; with the default 0 the samples follow the flow
        conditioned on the 8-bit range (there 86% kept at ``T = 1``, 35% at ``T = 2``).

        Args:
            n: Number of patches, >= 0.
            method: One of :data:`METHODS`.
            temperature: ``"temperature"``: ``T`` (default 1.5; ``T > 1`` leaves the typical set).
                ``"rejection"``: the proposal temperature; ``None`` picks the lowest temperature of a
                small grid whose pilot acceptance rate is at least half the best rate of the grid.
                Must be None for ``"tail"``.
            quantile: ``"tail"``: the chi-square quantile the latent radius lies beyond, in (0, 1).
            band: ``"rejection"``: ``(lo, hi)`` quantiles of the training patches' log-likelihoods,
                ``0 <= lo < hi <= 1``, or a name from :data:`BANDS`. A sample is kept when its
                log-likelihood (after rounding to 8 bits) lies in ``[q_lo, q_hi]`` (``q_0 = -inf``).
            max_clipped: Largest share of a patch's pixels allowed outside 0..255, in [0, 1].
            max_tries: Most proposal rounds before giving up.
            random_state: Seed or :class:`numpy.random.Generator`; the same seed gives the same patches.

        Returns:
            ``(patches, log_likelihood)``: shapes ``(n, p, p[, C])`` uint8 and ``(n,)`` (nats).

        Raises:
            ValueError: On a bad parameter, or when ``n`` patches are not found in ``max_tries`` rounds.
        """
        check_is_fitted(self, "detector_")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        n = _count(n)
        if not isinstance(max_tries, Integral) or max_tries < 1:
            raise ValueError(f"max_tries must be a positive integer, got {max_tries!r}")
        if not isinstance(max_clipped, Real) or not 0.0 <= max_clipped <= 1.0:
            raise ValueError(f"max_clipped must be a share in [0, 1], got {max_clipped!r}")
        rng = np.random.default_rng(random_state)
        low, high = -np.inf, np.inf
        if method == "rejection":
            band = _band(band)
            low, high = self.band_limits(band)
            if temperature is None:
                temperature = self._pilot_temperature(low, high, max_clipped, rng)
            method, rate = "temperature", 0.5
        else:
            self.draw_latent(0, method, temperature=temperature, quantile=quantile)  # checks the options
            rate = 1.0
        kept_patches, kept_ll, proposed, got = [], [], 0, 0
        for _ in range(max_tries):
            if got >= n:
                break
            batch = int(min(max(np.ceil(1.2 * (n - got) / max(rate, 0.01)), 64), 8192))
            z = self.draw_latent(batch, method, temperature=temperature, quantile=quantile, random_state=rng)
            patches, ll, keep = self._proposals(z, low, high, max_clipped)
            kept_patches.append(patches[keep])
            kept_ll.append(ll[keep])
            proposed, got = proposed + batch, got + int(keep.sum())
            rate = got / proposed
        if got < n:
            what = f"band {tuple(band)}" if np.isfinite(high) else f"max_clipped={max_clipped}"
            raise ValueError(
                f"{what}: only {got} of {n} patches found in {max_tries} tries of {method} sampling"
                f"{'' if temperature is None else f' at temperature {temperature:g}'} ({got / max(proposed, 1):.3%} "
                "accepted); widen band, change temperature, raise max_clipped or max_tries"
            )
        logger.info("sampling: %d of %d proposals accepted (%.2f%%)", got, proposed, 100 * got / max(proposed, 1))
        if n == 0:
            return np.zeros((0, *self.patch_shape), np.uint8), np.zeros(0)
        return np.concatenate(kept_patches)[:n], np.concatenate(kept_ll)[:n]

    def _proposals(self, z: np.ndarray, low: float, high: float, max_clipped: float):
        """Decoded patches, their log-likelihoods and which are kept (in ``[low, high]``, few clipped pixels)."""
        patches, clipped = self._decode(z)
        ll = self.log_likelihood(patches)
        return patches, ll, (clipped <= max_clipped) & (ll >= low) & (ll <= high)

    def _pilot_temperature(self, low: float, high: float, max_clipped: float, rng: np.random.Generator) -> float:
        """The lowest grid temperature whose acceptance rate on a pilot draw is at least half the best one."""
        rates = []
        for t in _PILOT_TEMPERATURES:
            z = self.draw_latent(_PILOT_SIZE, "temperature", temperature=t, random_state=rng)
            rates.append(float(self._proposals(z, low, high, max_clipped)[2].mean()))
        best = max(rates)
        chosen = next(t for t, r in zip(_PILOT_TEMPERATURES, rates, strict=True) if r >= best / 2)
        logger.info("rejection sampling: temperature %g (pilot acceptance %s)", chosen,
                    ", ".join(f"{t:g}: {r:.1%}" for t, r in zip(_PILOT_TEMPERATURES, rates, strict=True)))
        return chosen

    # ---------------------------------------------------------- model files
    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        check_is_fitted(self, "detector_")
        state, arrays = self.detector_._save_state()
        params = self.detector_.get_params(deep=False)
        params["options"] = dataclasses.asdict(params["options"]) if params.get("options") is not None else None
        own = {"offset_": self.offset_, "n_channels_": int(self.n_channels_), "n_features_": int(self.n_features_),
               "detector_params": params, "detector_state": state}
        return own, {**prefixed("detector", arrays), "train_log_likelihood": self.train_log_likelihood_}

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in state["detector_params"].items()}
        params["device"] = self.device
        options = params.get("options")
        # files before options were saved as fields hold their text only; they scored in float64
        if isinstance(options, dict):
            params["options"] = FlowOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in options.items()})
        else:
            params["options"] = FlowOptions(pca_components=None, scoring_dtype="float64")
        detector = FlowDetector(**params)
        detector._load_state(state["detector_state"], unprefixed("detector", arrays))
        self.detector_ = detector
        self.offset_ = float(state["offset_"])
        self.n_channels_ = int(state["n_channels_"])
        self.n_features_ = int(state["n_features_"])
        self.train_log_likelihood_ = np.asarray(arrays["train_log_likelihood"], dtype=np.float64)


def _count(n) -> int:
    if not isinstance(n, Integral) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    return int(n)


def _temperature(temperature: float | None) -> float:
    t = _DEFAULT_TEMPERATURE if temperature is None else temperature
    if not isinstance(t, Real) or not np.isfinite(t) or t <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(t)


def _band(band) -> tuple[float, float]:
    if isinstance(band, str):
        if band not in BANDS:
            raise ValueError(f"band must be a (lo, hi) pair of quantiles or one of {sorted(BANDS)}, got {band!r}")
        band = BANDS[band]
    try:
        lo, hi = (float(v) for v in band)
    except (TypeError, ValueError):
        raise ValueError(f"band must be a (lo, hi) pair of quantiles, got {band!r}") from None
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"band must satisfy 0 <= lo < hi <= 1, got {band!r}")
    return lo, hi
