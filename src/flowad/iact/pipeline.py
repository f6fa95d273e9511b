"""Gamma/hadron separation with a normalizing flow: images -> cleaning -> Hillas -> flow.

:class:`HillasFeatures` turns raw camera images into one feature table (tail-cuts cleaning,
:func:`~flowad.iact.hillas.hillas_parameters`, :func:`~flowad.iact.features.magic_features`, the
number of surviving pixels and a ``valid`` flag). :class:`GammaHadronSeparator` composes it with a
detector (a :class:`~flowad.models.FlowDetector` by default) and turns the detector's score into
a *gammaness*, higher = more gamma-like. It also takes precomputed feature tables (a
``pandas.DataFrame``), e.g. the UCI MAGIC set, whose column names (``fLength``, ...) are mapped to
the names used here.

**Features of the flow** (:data:`FLOW_FEATURES`, those present in the table): ``log10_intensity``,
``length``, ``width``, ``dist``, ``alpha``, ``conc``, ``conc1``, ``asym``, ``m3long``, ``m3trans``,
``skewness``, ``kurtosis``. Left out: the cog position ``x``, ``y``, ``r``, ``phi`` and ``psi`` (they
say where the shower landed, not what it is; ``alpha`` and ``dist`` keep the part that matters, the
orientation to the source) and the uncertainties. Heavy-tailed features are compressed with a scale
``s`` learned on the training rows (the median of ``|x|``, so the step does not depend on units):
``log1p(x / s)`` for the positive ``length``, ``width`` and ``kurtosis``, ``asinh(x / s)`` for the
signed ``asym``, ``m3long``, ``m3trans`` and ``skewness`` (:data:`FEATURE_TRANSFORMS`); the others
are bounded or already logarithmic and enter as they are (the detector standardises every column).

**Invalid events** (fewer than ``min_pixels`` pixels after cleaning, intensity below
``min_intensity``, degenerate moments, any non-finite feature) never reach the detector: they are
counted (``n_invalid_train_``, logged), their gammaness is :data:`INVALID_GAMMANESS` (the lowest
finite float, so every cut rejects them) and :meth:`GammaHadronSeparator.gammaness` can return the
``valid`` mask so that metrics can leave them out.

Modes: ``mode="oneclass"`` fits the flow to the events of one class (``train_on``; all events when
no labels are given: the unsupervised setting); ``mode="twoclass"`` calls ``detector.fit(X, y)``
with the other class as known negatives (the likelihood is raised on the training class and lowered
on the negatives; Chiu and Lai, "Self-Supervised Normalizing Flows for Image Anomaly Detection and
Localization", CVPR Workshops 2023). With ``train_on="hadron"`` the gammaness is minus the hadron
score. ``threshold="chi2"`` uses the flow's analytic latent cut (score ``-||z||^2``).

A fitted separator is a flowad model like any other (:func:`flowad.io.save`, :func:`flowad.io.load`):
its settings, feature scales, cut and detector in one model folder.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from flowad.core.estimator import BaseDetector, prefixed, unprefixed
from flowad.core.model_files import nested_model, nested_state
from flowad.iact.camera import CameraGeometry, load_camera
from flowad.iact.cleaning import tailcuts_clean
from flowad.iact.features import magic_features
from flowad.iact.hillas import hillas_parameters
from flowad.models import FlowDetector, FlowOptions, FlowRatioClassifier, TwoClassFlowDetector

__all__ = [
    "FEATURE_TRANSFORMS",
    "FLOW_FEATURES",
    "INVALID_GAMMANESS",
    "UCI_NAMES",
    "GammaHadronSeparator",
    "HillasFeatures",
]

logger = logging.getLogger(__name__)

#: Candidate flow inputs, in order; a table uses those it has.
FLOW_FEATURES: tuple[str, ...] = ("log10_intensity", "length", "width", "dist", "alpha", "conc", "conc1",
                                  "asym", "m3long", "m3trans", "skewness", "kurtosis")
#: Compression of heavy-tailed features (``s``: median ``|x|`` of the training rows); others: identity.
FEATURE_TRANSFORMS: dict[str, str] = {"length": "log1p", "width": "log1p", "kurtosis": "log1p",
                                      "asym": "asinh", "m3long": "asinh", "m3trans": "asinh", "skewness": "asinh"}
#: UCI MAGIC column -> feature name here (UCI units: mm, degrees; ``fSize`` is already log10).
UCI_NAMES: dict[str, str] = {"fLength": "length", "fWidth": "width", "fSize": "log10_intensity", "fConc": "conc",
                             "fConc1": "conc1", "fAsym": "asym", "fM3Long": "m3long", "fM3Trans": "m3trans",
                             "fAlpha": "alpha", "fDist": "dist"}
#: Gammaness of events without valid image parameters.
INVALID_GAMMANESS = float(np.finfo(np.float64).min)


@dataclass(frozen=True)
class HillasFeatures:
    """Images -> tail-cuts cleaning -> Hillas parameters and MAGIC features, one table.

    Args:
        camera: Camera geometry of the images.
        picture_thresh: Picture threshold of the cleaning, photo-electrons.
        boundary_thresh: Boundary threshold, photo-electrons.
        min_number_picture_neighbors: See :func:`~flowad.iact.cleaning.tailcuts_clean`.
        min_pixels: Events with fewer pixels after cleaning are invalid.
        min_intensity: Events with a smaller cleaned intensity (p.e.) are invalid.
        source: Source position in the camera (m) for ``alpha``, ``dist`` and the axis orientation.
    """

    camera: CameraGeometry
    picture_thresh: float = 6.0
    boundary_thresh: float = 3.0
    min_number_picture_neighbors: int = 0
    min_pixels: int = 3
    min_intensity: float = 0.0
    source: tuple[float, float] = (0.0, 0.0)

    def clean(self, images: np.ndarray) -> np.ndarray:
        """Cleaning masks, shape ``(N, n_pix)`` boolean, for images of shape ``(N, n_pix)``."""
        return tailcuts_clean(self.camera, np.atleast_2d(images), self.picture_thresh, self.boundary_thresh,
                              min_number_picture_neighbors=self.min_number_picture_neighbors)

    def transform(self, images: np.ndarray) -> pd.DataFrame:
        """The feature table of a batch of raw images.

        Args:
            images: Pixel charges in photo-electrons, shape ``(N, n_pix)``.

        Returns:
            ``N`` rows: the Hillas keys, :data:`~flowad.iact.features.MAGIC_KEYS`, ``n_pixels`` (after
            cleaning) and ``valid``; invalid rows hold zeros, never NaN.
        """
        if int(self.min_pixels) != self.min_pixels or self.min_pixels < 1:
            raise ValueError(f"min_pixels must be a positive integer, got {self.min_pixels!r}")
        if not np.isfinite(self.min_intensity) or self.min_intensity < 0:
            raise ValueError(f"min_intensity must be a non-negative number, got {self.min_intensity!r}")
        masks = self.clean(images)
        clean = np.where(masks, np.atleast_2d(images), 0.0)
        cam = self.camera
        hillas = hillas_parameters(cam.pix_x, cam.pix_y, clean, pix_area=cam.pix_area)
        n_pixels = masks.sum(axis=1)
        hillas["valid"] &= (n_pixels >= self.min_pixels) & (hillas["intensity"] >= self.min_intensity)
        feats = magic_features(cam.pix_x, cam.pix_y, clean, hillas, source=self.source)
        table = pd.DataFrame({**hillas, **feats, "n_pixels": n_pixels})
        table.loc[~table["valid"], table.columns.drop(["valid", "n_pixels"])] = 0.0
        valid = table.pop("valid")
        table["valid"] = valid
        logger.debug("%d of %d images have valid image parameters", int(valid.sum()), len(table))
        return table


def _scale(values: np.ndarray) -> float:
    """Median of ``|values|`` (mean, then 1, where that is 0) as the compression scale."""
    for s in (np.median(np.abs(values)), np.mean(np.abs(values))) if values.size else ():
        if np.isfinite(s) and s > 0:
            return float(s)
    return 1.0


def _flow_inputs(table: pd.DataFrame, features: tuple[str, ...], scales: dict[str, float]) -> tuple[np.ndarray, ...]:
    """Rows ``(N, d)`` for the detector and the mask ``(N,)`` of usable (valid, finite) rows."""
    columns = []
    for name in features:
        x = table[name].to_numpy(dtype=np.float64)
        kind = FEATURE_TRANSFORMS.get(name) if name in scales else None
        with np.errstate(all="ignore"):
            if kind == "log1p":
                x = np.log1p(np.clip(x, 0.0, None) / scales[name])
            elif kind == "asinh":
                x = np.arcsinh(x / scales[name])
        columns.append(x)
    Z = np.column_stack(columns) if columns else np.zeros((len(table), 0))
    ok = table["valid"].to_numpy(dtype=bool) & np.isfinite(Z).all(axis=1)
    Z[~ok] = 0.0
    return Z, ok


class GammaHadronSeparator(BaseEstimator):
    """Gammaness from a density model of one class of events (see the module docstring).

    Args:
        camera: Camera of the images: a :class:`~flowad.iact.camera.CameraGeometry` or a name for
            :func:`~flowad.iact.camera.load_camera` (``"magic"``, ``"lst"``); only needed for images.
        picture_thresh: See :class:`HillasFeatures`.
        boundary_thresh: See :class:`HillasFeatures`.
        min_pixels: See :class:`HillasFeatures`.
        min_intensity: See :class:`HillasFeatures`.
        source: See :class:`HillasFeatures`.
        features: Flow inputs; ``None``: every name of :data:`FLOW_FEATURES` the table has.
        compress: Apply :data:`FEATURE_TRANSFORMS` (False: the raw columns, for comparison).
        detector: Unfitted detector to clone; ``None``: ``FlowDetector(random_state=random_state)``.
            With ``mode="twoclass"`` a ``FlowDetector`` becomes a two-class flow; any other model with
            ``fit(X, y)`` (y: 1 = the other class), ``score_samples`` and ``offset_`` is used as it is.
        mode: ``"oneclass"``, ``"twoclass"`` (needs labels) or ``"ratio"`` (needs labels): one flow per
            class, gammaness = log posterior odds of a gamma
            (:class:`~flowad.models.tabular_flow.ratio.FlowRatioClassifier`, hadrons as the background),
            the cut set on held-out hadrons.
        train_on: ``"gamma"`` or ``"hadron"``: the class the flow models (one- and two-class modes).
        threshold: ``"conformal"`` (the detector's calibrated cut) or ``"chi2"`` (latent cut).
        train_efficiency: Share of training-class events the cut keeps in that class, in [0.5, 1):
            the gamma efficiency on training gammas, or 1 - the hadron acceptance on training hadrons
            (``mode="ratio"``: on held-out training hadrons).
        random_state: Seed of the default detector.

    Attributes:
        detector_: The fitted detector. features_: The flow inputs used. scales_: Feature -> scale.
        cut_: Events with ``gammaness > cut_`` are predicted gammas. n_train_: Rows fitted.
        n_invalid_train_: Training events left out for lack of valid image parameters.
    """

    def __init__(self, camera: CameraGeometry | str | None = None, *, picture_thresh: float = 6.0,
                 boundary_thresh: float = 3.0, min_pixels: int = 3, min_intensity: float = 0.0,
                 source: tuple[float, float] = (0.0, 0.0), features: tuple[str, ...] | None = None,
                 compress: bool = True, detector=None, mode: str = "oneclass", train_on: str = "gamma",
                 threshold: str = "conformal", train_efficiency: float = 0.9, random_state: int | None = None) -> None:
        self.camera = camera
        self.picture_thresh = picture_thresh
        self.boundary_thresh = boundary_thresh
        self.min_pixels = min_pixels
        self.min_intensity = min_intensity
        self.source = source
        self.features = features
        self.compress = compress
        self.detector = detector
        self.mode = mode
        self.train_on = train_on
        self.threshold = threshold
        self.train_efficiency = train_efficiency
        self.random_state = random_state

    def _check_params(self) -> None:
        for name, value, options in (("mode", self.mode, ("oneclass", "twoclass", "ratio")),
                                     ("train_on", self.train_on, ("gamma", "hadron")),
                                     ("threshold", self.threshold, ("conformal", "chi2"))):
            if value not in options:
                raise ValueError(f"{name} must be one of {options}, got {value!r}")
        if not 0.5 <= float(self.train_efficiency) < 1.0:
            raise ValueError(f"train_efficiency must be in [0.5, 1), got {self.train_efficiency!r}")

    def hillas_features(self) -> HillasFeatures:
        """The image step with this separator's camera and cleaning settings."""
        if self.camera is None:
            raise ValueError("camera must be given (a CameraGeometry or 'magic'/'lst') to use images")
        camera = self.camera if isinstance(self.camera, CameraGeometry) else load_camera(str(self.camera))
        return HillasFeatures(camera, float(self.picture_thresh), float(self.boundary_thresh),
                              min_pixels=self.min_pixels, min_intensity=float(self.min_intensity),
                              source=tuple(float(v) for v in self.source))

    def feature_table(self, X) -> pd.DataFrame:
        """The feature table of ``X`` with a boolean ``valid`` column.

        Args:
            X: Raw images, array of shape ``(N, n_pix)``, or a precomputed feature table
                (``pandas.DataFrame``; UCI MAGIC names are renamed; no ``valid`` column: all valid).
        """
        if isinstance(X, pd.DataFrame):
            table = X.rename(columns=UCI_NAMES)
            valid = table["valid"].to_numpy(dtype=bool) if "valid" in table else np.ones(len(table), bool)
            return table.assign(valid=valid)
        images = np.asarray(X)
        if images.ndim != 2:
            raise ValueError(f"X must be images of shape (N, n_pix) or a feature DataFrame, got shape {images.shape}")
        return self.hillas_features().transform(images)

    def fit(self, X, y=None, *, callback=None) -> GammaHadronSeparator:
        """Fit the feature scales and the detector.

        Args:
            X: Images ``(N, n_pix)`` or a feature table with ``N`` rows.
            y: Labels ``(N,)``: 0 = gamma, anything else (1 hadron, 2 muon) = background; ``None``
                (``mode="oneclass"`` only): fit on every event, unlabelled.
            callback: Passed on to the detector's ``fit`` (per-epoch progress of torch detectors).

        Returns:
            ``self``.
        """
        self._check_params()
        table = self.feature_table(X)
        if len(table) == 0:
            raise ValueError("X must hold at least one event")
        features = self._resolve_features(table)
        if y is None:
            if self.mode != "oneclass":
                raise ValueError(f"y is required for mode={self.mode!r}")
            rows = np.ones(len(table), dtype=bool)
        else:
            labels = np.asarray(y)
            if labels.shape != (len(table),) or labels.dtype.kind not in "biu":
                raise ValueError(f"y must be integer labels of shape ({len(table)},), got {labels.dtype} "
                                 f"{labels.shape}")
            background = labels != 0
            flow_y = (background if self.train_on == "gamma" else ~background).astype(np.int64)
            rows = flow_y == 0 if self.mode == "oneclass" else np.ones(len(table), dtype=bool)
        usable = rows & table["valid"].to_numpy(dtype=bool)
        scales = {name: _scale(table[name].to_numpy(dtype=np.float64)[usable])
                  for name in features if name in FEATURE_TRANSFORMS and self.compress}
        Z, ok = _flow_inputs(table, features, scales)
        train = rows & ok
        self.n_invalid_train_ = int((rows & ~ok).sum())
        if self.n_invalid_train_:
            logger.info("left out %d of %d training events without valid image parameters",
                        self.n_invalid_train_, int(rows.sum()))
        if train.sum() < 2:
            raise ValueError(f"X must hold at least 2 valid training events, got {int(train.sum())}")
        detector = self._make_detector()
        extra = {} if callback is None else {"callback": callback}
        if self.mode == "ratio":  # signal (1) = gamma, background (0) = hadron
            detector.fit(Z[train], (~background[train]).astype(np.int64), **extra)
        elif self.mode == "twoclass":
            detector.fit(Z[train], flow_y[train], **extra)
        else:
            detector.fit(Z[train], **extra)
        self.detector_, self.features_, self.scales_ = detector, features, scales
        self.n_train_ = int(train.sum())
        if self.mode == "ratio":
            self.cut_ = float(detector.threshold_)
        else:
            self.cut_ = float(detector.offset_) if self.train_on == "gamma" else -float(detector.offset_)
        return self

    def _resolve_features(self, table: pd.DataFrame) -> tuple[str, ...]:
        if self.features is None:
            features = tuple(name for name in FLOW_FEATURES if name in table)
        else:
            features = tuple(self.features)
            missing = [name for name in features if name not in table]
            if missing:
                raise ValueError(f"features {missing} are not in the feature table (columns: {list(table.columns)})")
        if not features:
            raise ValueError(f"features: the table has none of {FLOW_FEATURES}")
        return features

    def _make_detector(self):
        if self.mode == "ratio":
            if self.threshold == "chi2":
                raise ValueError("threshold='chi2' needs mode='oneclass' or 'twoclass', not 'ratio'")
            if self.detector is not None and not isinstance(self.detector, FlowRatioClassifier):
                raise ValueError(f"mode='ratio' needs a FlowRatioClassifier, got {type(self.detector).__name__}")
            detector = (FlowRatioClassifier(random_state=self.random_state) if self.detector is None
                        else clone(self.detector))
            return detector.set_params(background_acceptance=1.0 - float(self.train_efficiency))
        if self.detector is None:
            kind = TwoClassFlowDetector if self.mode == "twoclass" else FlowDetector
            detector = kind(random_state=self.random_state)
        else:
            detector = clone(self.detector)
        if self.mode == "twoclass" and type(detector) is FlowDetector:
            detector = TwoClassFlowDetector(**detector.get_params(), negatives="labels")
        elif self.mode == "twoclass" and isinstance(detector, BaseDetector) and not isinstance(detector,
                                                                                           TwoClassFlowDetector):
            raise ValueError(f"mode='twoclass' needs a flow detector or a supervised model with fit(X, y), got the "
                             f"one-class {type(detector).__name__}")
        settings: dict = {"contamination": 1.0 - float(self.train_efficiency)}
        if isinstance(detector, FlowDetector):
            options = detector.options if detector.options is not None else FlowOptions()
            settings["options"] = dataclasses.replace(options, threshold=self.threshold)
            if self.threshold == "chi2" and detector.score_type == "nll":
                settings["score_type"] = "latent_norm"
        elif self.threshold == "chi2":
            raise ValueError(f"threshold='chi2' needs a flow detector, not {type(detector).__name__}")
        return detector.set_params(**settings)

    def gammaness(self, X, return_valid: bool = False):
        """Gammaness of each event, higher = more gamma-like; shape ``(N,)``.

        Args:
            X: Images ``(N, n_pix)`` or a feature table with ``N`` rows.
            return_valid: Also return the boolean mask ``(N,)`` of events with valid parameters
                (the others have gammaness :data:`INVALID_GAMMANESS`).
        """
        if not hasattr(self, "detector_"):
            raise ValueError("this GammaHadronSeparator is not fitted yet; call fit first")
        table = self.feature_table(X)
        missing = [name for name in self.features_ if name not in table]
        if missing:
            raise ValueError(f"X lacks the features {missing} the separator was fitted on")
        Z, ok = _flow_inputs(table, self.features_, self.scales_)
        out = np.full(len(table), INVALID_GAMMANESS)
        if ok.any() and self.mode == "ratio":
            out[ok] = self.detector_.decision_scores(Z[ok])
        elif ok.any():
            score = self.detector_.score_samples(Z[ok])
            out[ok] = score if self.train_on == "gamma" else -score
        out = np.clip(out, INVALID_GAMMANESS, np.finfo(np.float64).max)
        return (out, ok) if return_valid else out

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """Fitted state for :func:`flowad.io.save`: the feature scales, the cut and the detector."""
        inner_state, inner_arrays = nested_state(self.detector_)
        state = {"features_": list(self.features_), "scales_": self.scales_, "cut_": self.cut_,
                 "n_train_": self.n_train_, "n_invalid_train_": self.n_invalid_train_, "detector_": inner_state}
        return state, prefixed("detector", inner_arrays)

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        self.detector_ = nested_model(state["detector_"], unprefixed("detector", arrays))
        self.features_, self.cut_ = tuple(state["features_"]), float(state["cut_"])
        self.scales_ = {k: float(v) for k, v in state["scales_"].items()}
        self.n_train_, self.n_invalid_train_ = int(state["n_train_"]), int(state["n_invalid_train_"])

    def predict(self, X) -> np.ndarray:
        """0 (gamma: ``gammaness > cut_``) or 1 (hadron, and every invalid event); shape ``(N,)`` int64."""
        g, ok = self.gammaness(X, return_valid=True)
        return np.where(ok & (g > self.cut_), 0, 1).astype(np.int64)
