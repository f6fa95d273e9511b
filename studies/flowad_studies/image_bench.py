"""The image benchmark: image models x (texture defect sets, digit one-class tasks).

One row per (task, dataset, subset, model) in ``results.jsonl`` (resumable, like the tabular
runner): image ROC-AUC, pixel ROC-AUC, AUPRO and best F1 where there are masks, per-defect-kind
pixel and image ROC-AUC, fit and score seconds. Beside the rows it keeps what the report draws:
a few heatmaps per texture, the small-defect score distributions, and the CPU time per 256x256
image of each model against the autoencoder, measured in the same run.

Models whose image score is read off the map also get a row per entry of ``map_blur``
(``"fastflow+blur4"``, ``"fastflow+blur4@efficientnet_lite2"``): the same fit's unblurred maps with a
Gaussian blur of that many pixels and the image score read off the blurred map, exactly what
``smooth_sigma=S`` (and for FastFlow ``image_score_sigma=S``) would give, so the blur is measured
without a second fit. Where such a model blurs its own maps (FastFlow's default), the unblurred maps
come from scoring the same fit once more with ``smooth_sigma=0``, and they get a ``"+blur0"`` row.
PatchCore also gets a ``"+mapmax"`` row: the same maps, the image score their maximum instead of the
reweighted largest patch distance.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from flowad.core.image_maps import aggregate_map_tensor, gaussian_smooth
from flowad.core.threads import torch_threads
from flowad.datasets.digits import one_class_task
from flowad.datasets.textures import TEXTURES, load_texture, make_texture_set
from flowad.evaluation.bench import machine_info
from flowad.evaluation.image_metrics import aupro, evaluate_image_detector_outputs, image_roc_auc, pixel_roc_auc
from flowad.evaluation.results_log import ResultsLog
from flowad.models.registry import IMAGE_MODELS, image_model

__all__ = ["ImageBenchConfig", "per_kind_metrics", "run_image_bench", "write_example_maps"]

logger = logging.getLogger(__name__)

#: Test images kept per texture for the heatmap figure.
N_EXAMPLES = 6


@dataclass
class ImageBenchConfig:
    """What to run.

    Attributes:
        models: Names from :data:`flowad.models.registry.IMAGE_MODELS`, each optionally with
            ``@BACKBONE`` (``"patchcore@efficientnet_lite2"``) for models with a feature backbone.
        textures: Texture sets (see :func:`flowad.datasets.make_texture_set`).
        texture_options: Passed to ``make_texture_set`` (``n_train``, ``crop``, ...).
        digit_sets: ``"fashion_mnist"`` and/or ``"mnist"``: one-class tasks, each class normal in turn.
        digit_classes: Classes taken as normal.
        digit_max_train, digit_max_test: Subsampling of the digit tasks (CPU budget).
        digit_size: Digits are zero-padded from 28 to this side (the autoencoder needs multiples of 8).
        params: Hyper-parameter overrides per model and task: ``{"fastflow": {...}}`` for all tasks,
            or ``{"digits:patchflow": {...}}`` for one task kind. By default FastFlow and PatchCore
            keep the 32-pixel digits at their size with no mirrored margin (their border is already
            black; resizing to 256 would cost 64 times the compute).
        timing_images: Number of 256x256 crops timed per model (0: no timing).
        map_blur: Blurs (pixels) measured on the texture maps of models that do not blur theirs.
        keep_maps: Also save every texture test map (``maps/<texture>__<model>_all.npz``, float32;
            FastFlow's before its blur), so that other post-processing can be measured on the same fit later.
        seed: ``random_state`` of the data and the models.
        torch_threads: ``torch.set_num_threads`` for the run.
    """

    models: list[str] = field(default_factory=lambda: list(IMAGE_MODELS))
    textures: list[str] = field(default_factory=lambda: list(TEXTURES))
    texture_options: dict = field(default_factory=dict)
    digit_sets: list[str] = field(default_factory=lambda: ["fashion_mnist"])
    digit_classes: list[int] = field(default_factory=lambda: list(range(10)))
    digit_max_train: int | None = 1000
    digit_max_test: int | None = 2000
    digit_size: int = 32
    params: dict[str, dict] = field(default_factory=lambda: {
        "digits:patchflow": {"patch_size": 8, "stride": 4, "levels": 1},
        "digits:fastflow": {"input_size": None, "reflect_margin": 0},
        "digits:patchcore": {"input_size": None, "reflect_margin": 0},
    })
    timing_images: int = 8
    map_blur: list[float] = field(default_factory=lambda: [2.0, 4.0])
    keep_maps: bool = False
    seed: int = 0
    torch_threads: int | None = 1


def _model(config: ImageBenchConfig, name: str, task: str):
    """The detector a model entry names: ``"fastflow"``, or ``"fastflow@efficientnet_lite2"`` for
    another backbone than the default."""
    model, _, backbone = name.partition("@")
    if model not in IMAGE_MODELS:
        raise ValueError(f"models must be names from {sorted(IMAGE_MODELS)} (with @BACKBONE where the model "
                         f"has one), got {name!r}")
    params = {**config.params.get(model, {}), **config.params.get(f"{task}:{model}", {}),
              **config.params.get(name, {}), "random_state": config.seed}
    if backbone:
        params["backbone"] = backbone
    return image_model(model, **params)


def _pad(images: np.ndarray, size: int) -> np.ndarray:
    h, w = images.shape[1:3]
    if size < max(h, w):
        raise ValueError(f"digit_size must be at least {max(h, w)}, got {size}")
    top, left = (size - h) // 2, (size - w) // 2
    return np.pad(images, ((0, 0), (top, size - h - top), (left, size - w - left)))


def _timed(fn: Callable, *args):
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def per_kind_metrics(test, image_scores: np.ndarray, maps: np.ndarray) -> dict[str, dict[str, float]]:
    """Per defect kind: image ROC-AUC (kind vs good), pixel ROC-AUC (the kind's images only) and
    AUPRO (the kind's images and the good ones, so normal images' pixels count as false positives
    as they do in the overall AUPRO)."""
    kinds = np.asarray(test.kinds)
    good = kinds == "good"
    out = {}
    for kind in sorted(set(kinds) - {"good"}):
        sel = kinds == kind
        both = sel | good
        out[kind] = {
            "image_roc_auc": image_roc_auc(test.labels[both], image_scores[both]),
            "pixel_roc_auc": pixel_roc_auc(test.masks[sel], maps[sel]),
            "aupro": aupro(test.masks[both], maps[both]),
        }
    return out


def _small_defects(test, image_scores: np.ndarray, maps: np.ndarray, kind: str = "square_small") -> dict:
    """What the report plots for the smallest defects: image scores of good vs small-defect images,
    and map values inside the defects as quantiles of the normal images' pixel values."""
    kinds = np.asarray(test.kinds)
    small, good = kinds == kind, kinds == "good"
    if not small.any() or not good.any():
        return {}
    normal_pixels = np.sort(maps[good].ravel())
    inside = np.array([maps[i][test.masks[i]].mean() for i in np.flatnonzero(small)])
    return {
        "good_scores": image_scores[good].tolist(),
        "small_scores": image_scores[small].tolist(),
        "defect_pixel_quantile": (np.searchsorted(normal_pixels, inside) / len(normal_pixels)).tolist(),
    }


def _texture_jobs(config: ImageBenchConfig, out: Path, log: ResultsLog, on_job) -> None:
    for texture in config.textures:
        train, test = make_texture_set(texture, random_state=config.seed, **config.texture_options)
        for name in config.models:
            if log.done(("texture", texture, "", name)):
                continue
            if on_job is not None:
                on_job(f"texture {texture} {name}")
            detector = _model(config, name, "texture")
            try:
                _, fit_s = _timed(detector.fit, train.images)
                (scores, maps), score_s = _timed(detector.score_and_map, test.images)
            except (ValueError, RuntimeError) as error:  # one failed job must not end the run
                logger.warning("texture %s %s failed: %s", texture, name, error)
                log.append({"task": "texture", "dataset": texture, "subset": "", "model": name,
                                       "error": str(error)})
                continue
            anomaly = -scores
            metrics = evaluate_image_detector_outputs(test.labels, test.masks, anomaly, maps)
            row = {"task": "texture", "dataset": texture, "subset": "", "model": name, **metrics.as_dict(),
                   "fit_seconds": fit_s, "score_seconds": score_s, "per_kind": per_kind_metrics(test, anomaly, maps),
                   "small_defects": _small_defects(test, anomaly, maps)}
            write_example_maps(out / "maps" / f"{texture}__{name}.npz", test, maps)
            raw = _unblurred_maps(detector, test.images, maps)
            if config.keep_maps:
                np.savez_compressed(out / "maps" / f"{texture}__{name}_all.npz", maps=raw.astype(np.float32),
                                    image_scores=anomaly)
            if texture == config.textures[0] and config.timing_images > 0:
                row["seconds_per_256px_image"] = _time_256(detector, texture, config)
            log.append(row)
            if raw is not maps:
                log.append(_blurred_row(row, test, raw, 0.0, detector.image_score))
            for sigma in _blurs(detector, config):
                log.append(_blurred_row(row, test, raw, sigma, detector.image_score))
            if getattr(detector, "image_score", None) == "reweighted":
                log.append(_map_max_row(row, test, maps))


def _blurs(detector, config: ImageBenchConfig) -> list[float]:
    """The ``map_blur`` entries to measure for ``detector``: none unless its image score is an
    aggregate of the map and its unblurred maps are at hand (:func:`_unblurred_maps`)."""
    if not _blurs_its_maps_apart(detector) and getattr(detector, "smooth_sigma", None) != 0:
        return []
    if getattr(detector, "image_score", None) not in ("max", "top1_mean"):
        return []
    return [float(s) for s in config.map_blur if s > 0]


def _blurs_its_maps_apart(detector) -> bool:
    """Whether ``detector`` blurs its maps apart from its image score (FastFlow's ``image_score_sigma``)."""
    return hasattr(detector, "image_score_sigma") and getattr(detector, "smooth_sigma", 0) != 0


def _unblurred_maps(detector, images: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """``maps`` themselves when ``detector`` does not blur them, else (FastFlow) the same fit's maps
    scored again with ``smooth_sigma=0``."""
    if not _blurs_its_maps_apart(detector):
        return maps
    sigma = detector.smooth_sigma
    detector.set_params(smooth_sigma=0.0)
    try:
        return detector.score_and_map(images)[1]
    finally:
        detector.set_params(smooth_sigma=sigma)


def _map_max_row(row: dict, test, maps: np.ndarray) -> dict:
    """The row of ``row``'s model (PatchCore) with the image score read off its (blurred) map, the
    map's maximum, instead of the reweighted largest patch distance; the maps are the same."""
    anomaly = maps.reshape(len(maps), -1).max(axis=1).astype(np.float64)
    return _variant_row(row, "+mapmax", test, anomaly, maps, {"image_score": "map maximum"})


def _blurred_row(row: dict, test, maps: np.ndarray, sigma: float, image_score: str) -> dict:
    """The row of ``row``'s model with its maps blurred by ``sigma`` pixels (image scores from the
    blurred maps, as the scoring graph would compute them)."""
    start = time.perf_counter()
    with torch.no_grad():
        blurred = gaussian_smooth(torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)), sigma)
        anomaly = aggregate_map_tensor(blurred, image_score).numpy().astype(np.float64)
    blurred = blurred.numpy()
    return _variant_row(row, f"+blur{sigma:g}", test, anomaly, blurred, {"smooth_sigma": sigma},
                        extra_seconds=time.perf_counter() - start)


def _variant_row(row: dict, suffix: str, test, anomaly: np.ndarray, maps: np.ndarray, fields: dict,
                 extra_seconds: float = 0.0) -> dict:
    """A row measured on the same fit as ``row``: model named ``MODEL{suffix}[@BACKBONE]``, with
    ``variant_of`` and ``fields`` recorded, metrics from ``anomaly`` (image scores) and ``maps``."""
    metrics = evaluate_image_detector_outputs(test.labels, test.masks, anomaly, maps)
    model, at, backbone = row["model"].partition("@")
    return {**{k: row[k] for k in ("task", "dataset", "subset")}, "model": f"{model}{suffix}{at}{backbone}",
            "variant_of": row["model"], **fields, **metrics.as_dict(),
            "fit_seconds": row["fit_seconds"], "score_seconds": row["score_seconds"] + extra_seconds,
            "per_kind": per_kind_metrics(test, anomaly, maps), "small_defects": _small_defects(test, anomaly, maps)}


def write_example_maps(path: Path, test, maps: np.ndarray) -> None:
    """Save one good and one defective image per kind with their masks and ``maps`` (``(N, H, W)`` for
    all of ``test``) to ``path`` (``.npz``), as :func:`flowad_studies.image_report.heatmap_grid` reads them."""
    examples = _example_indices(test)
    np.savez_compressed(path, images=test.images[examples], masks=test.masks[examples],
                        maps=maps[examples].astype(np.float32), kinds=np.asarray(test.kinds)[examples])


def _example_indices(test) -> np.ndarray:
    """One good image and one image of each defect kind, in a fixed order."""
    kinds = np.asarray(test.kinds)
    picks = [int(np.flatnonzero(kinds == k)[0]) for k in dict.fromkeys(kinds)]
    return np.asarray(picks[:N_EXAMPLES])


def _time_256(detector, texture: str, config: ImageBenchConfig) -> float:
    """Seconds to score one 256x256 crop (mean over ``timing_images`` crops)."""
    full = load_texture(texture)
    rng = np.random.default_rng(config.seed)
    corners = rng.integers(0, full.shape[0] - 256, size=(config.timing_images, 2))
    crops = np.stack([full[r : r + 256, c : c + 256] for r, c in corners])
    detector.score_and_map(crops[:1])  # warm-up
    _, seconds = _timed(detector.score_and_map, crops)
    return seconds / len(crops)


def _digit_jobs(config: ImageBenchConfig, log: ResultsLog, on_job) -> None:
    for dataset in config.digit_sets:
        for cls in config.digit_classes:
            todo = [m for m in config.models if not log.done(("digits", dataset, str(cls), m))]
            if not todo:
                continue
            train, test, y = one_class_task(dataset, cls, config.digit_max_train, config.digit_max_test,
                                            random_state=config.seed)
            train, test = _pad(train, config.digit_size), _pad(test, config.digit_size)
            for name in todo:
                if on_job is not None:
                    on_job(f"{dataset} class {cls} {name}")
                detector = _model(config, name, "digits")
                try:
                    _, fit_s = _timed(detector.fit, train)
                    scores, score_s = _timed(detector.score_samples, test)
                except (ValueError, RuntimeError) as error:
                    logger.warning("%s class %s %s failed: %s", dataset, cls, name, error)
                    log.append({"task": "digits", "dataset": dataset, "subset": str(cls), "model": name,
                                           "error": str(error)})
                    continue
                row = {"task": "digits", "dataset": dataset, "subset": str(cls), "model": name,
                       "image_roc_auc": image_roc_auc(y, -scores), "n_images": len(y), "n_anomalous": int(y.sum()),
                       "fit_seconds": fit_s, "score_seconds": score_s}
                log.append(row)


def run_image_bench(config: ImageBenchConfig, out_dir: str | Path,
                    on_job: Callable[[str], None] | None = None) -> Path:
    """Run every job not yet in ``out_dir/results.jsonl``; returns the results file.

    Args:
        config: What to run.
        out_dir: Output folder (created); also gets ``config.json``, ``machine.json``, ``maps/``.
        on_job: Called with a short description before each job (progress display).
    """
    for name in config.models:
        _model(config, name, "texture")  # every name is checked before the first job
    out = Path(out_dir)
    (out / "maps").mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    log = ResultsLog(results, key=("task", "dataset", "subset", "model"))
    threads = config.torch_threads or torch.get_num_threads()
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2, default=repr))  # a module: its repr
    (out / "machine.json").write_text(json.dumps(machine_info(threads), indent=2))
    with torch_threads(threads):
        _texture_jobs(config, out, log, on_job)
        _digit_jobs(config, log, on_job)
    return results


