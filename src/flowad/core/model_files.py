"""Saving and loading models: a folder with ``config.json`` and ``weights.safetensors``.

``config.json`` holds the class name, hyper-parameters, the fitted state that is not an array
(threshold, table schema, training history), the file-format version, the flowad version, the
SHA-256 of the weights file and the SHA-256 of the configuration itself. ``weights.safetensors``
holds every array (network weights, preprocessing statistics, calibration scores). Nothing is ever
pickled or unpickled.

**What the checksums protect.** They catch accidental damage: a truncated copy, a bit flip, a file
edited by mistake. They are not a signature: anyone who edits a file can recompute them, so a model
file is as trustworthy as the place it came from. An edited configuration is still checked against
the weights: its network shapes must match the weights file before any network is built.

**Saving never loses a model.** The two files are written to temporary files in the model folder,
flushed to disk, and renamed into place, weights first. A save killed at any moment leaves a
loadable model: the old one, or (between the two renames) the new weights beside the old
``config.json`` and the new configuration still in its temporary file, which :func:`load`
recognises by the weights checksum and uses. Leftovers of killed saves are removed by the next
save. A save writes only these two files: anything else in the folder (notes, plots) is kept, and a
folder holding other files but no model is refused. Folders and files get the permissions of the
user's umask.

**Older files** load through one migration step per format version (:data:`MIGRATIONS`); a file
from a newer flowad is refused with a message.

**Loading without import side effects**: :data:`MODEL_CLASSES` maps every class name a file can
name to the module that defines it, imported on demand, so any model loads in a fresh process.

Example:
    >>> import numpy as np, tempfile
    >>> from flowad import IsolationForestDetector
    >>> detector = IsolationForestDetector(random_state=0).fit(np.random.default_rng(0).normal(size=(200, 2)))
    >>> folder = save(detector, tempfile.mkdtemp() + "/model")
    >>> bool((load(folder).score_samples(np.zeros((1, 2))) == detector.score_samples(np.zeros((1, 2)))).all())
    True
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import json
import logging
import math
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from flowad._version import __version__
from flowad.core.safe_files import (
    TEMP_MARK,
    fsync_folder,
    remove_stale_temporaries,
    temporary_path,
    write_new_file,
)

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "MIGRATIONS",
    "MODEL_CLASSES",
    "WEIGHTS_FILE",
    "check_module_shapes",
    "config_digest",
    "is_model",
    "load",
    "model_class",
    "nested_model",
    "nested_state",
    "save",
    "to_json",
]

logger = logging.getLogger(__name__)

FORMAT = "flowad-model"
#: Version of the file layout; :data:`MIGRATIONS` brings older files up to it.
FORMAT_VERSION = 4
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"

#: Class name in a model file -> the module that defines it (imported only when such a file loads).
MODEL_CLASSES: dict[str, str] = {
    "FlowDetector": "flowad.models.tabular_flow.estimator",
    "FlowEnsembleDetector": "flowad.models.tabular_flow.ensemble",
    "TwoClassFlowDetector": "flowad.models.tabular_flow.two_class",
    "FlowRatioClassifier": "flowad.models.tabular_flow.ratio",
    "AutoencoderDetector": "flowad.models.tabular_autoencoder.estimator",
    "IsolationForestDetector": "flowad.models.baselines.sklearn_adapters",
    "OneClassSVMDetector": "flowad.models.baselines.sklearn_adapters",
    "EllipticEnvelopeDetector": "flowad.models.baselines.sklearn_adapters",
    "LOFDetector": "flowad.models.baselines.sklearn_adapters",
    "WindowDetector": "flowad.timeseries.window_detector",
    "ConvAutoencoderDetector": "flowad.models.conv_autoencoder.estimator",
    "PatchFlowDetector": "flowad.models.patchflow.estimator",
    "FastFlowDetector": "flowad.models.fastflow.estimator",
    "PatchCoreDetector": "flowad.models.patchcore.estimator",
    "UNetSegmenter": "flowad.models.unet.estimator",
    "PatchSampler": "flowad.synth.sampler",
    "GammaHadronSeparator": "flowad.iact.pipeline",
}


#: Option objects that can be hyper-parameters -> the module that defines them.
OPTION_CLASSES: dict[str, str] = {
    "FlowOptions": "flowad.models.tabular_flow.options",
    "CameraGeometry": "flowad.iact.camera",
}


def model_class(name: str) -> type:
    """The class a model file names, imported on demand.

    Raises:
        ValueError: For a name flowad does not save. ImportError: (with the install command) when
            the class needs an optional part of flowad that is not installed.
    """
    module = MODEL_CLASSES.get(name)
    if module is None:
        raise ValueError(f"unknown model class {name!r}")
    return getattr(importlib.import_module(module), name)


def is_model(value: Any) -> bool:
    """Whether ``value`` is an instance of a class flowad saves."""
    cls = type(value)
    return MODEL_CLASSES.get(cls.__name__) == cls.__module__


def to_json(value: Any) -> Any:
    """Hyper-parameters and state as JSON (tuples -> lists, NumPy scalars -> Python, NaN -> None)."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # torch.device and similar simple objects


#: Key marking a hyper-parameter that is itself an (unfitted) flowad model, e.g. the detector a
#: :class:`~flowad.timeseries.WindowDetector` wraps.
_NESTED = "__flowad_model__"
#: Key marking a hyper-parameter that is an options object (a frozen dataclass of settings).
_OPTIONS = "__flowad_options__"
#: Key marking a custom backbone module (not saved: loading needs ``backbone=`` with the same one).
_BACKBONE = "__flowad_backbone__"


def _is_torch_module(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def _encode_params(params: dict) -> dict:
    """Hyper-parameters as JSON; a flowad model among them becomes ``{_NESTED: class, "params": ...}``."""
    def encode(value):
        if is_model(value):
            return {_NESTED: type(value).__name__, "params": _encode_params(value.get_params(deep=False))}
        if _is_torch_module(value):  # a backbone: its name where that rebuilds it, else a placeholder
            spec = value.spec() if hasattr(value, "spec") else None
            if spec is not None:
                return spec
            return {_BACKBONE: True, "name": getattr(value, "name", f"module:{type(value).__name__}")}
        if type(value).__name__ in OPTION_CLASSES and dataclasses.is_dataclass(value):
            fields = value.to_json() if hasattr(value, "to_json") else dataclasses.asdict(value)
            return {_OPTIONS: type(value).__name__, "fields": to_json(fields)}
        return to_json(value)

    return {str(k): encode(v) for k, v in params.items()}


def _decode_params(params: dict, path: Path) -> dict:
    """Inverse of :func:`_encode_params` (JSON lists back to tuples)."""
    def decode(value):
        if isinstance(value, dict) and _NESTED in value:
            try:
                cls = model_class(str(value[_NESTED]))
            except ValueError:
                raise _refuse(path, f"unknown nested model class {value[_NESTED]!r}") from None
            return cls(**_decode_params(value.get("params", {}), path))
        if isinstance(value, dict) and _OPTIONS in value:
            module = OPTION_CLASSES.get(str(value[_OPTIONS]))
            if module is None:
                raise _refuse(path, f"unknown options class {value[_OPTIONS]!r}")
            cls = getattr(importlib.import_module(module), str(value[_OPTIONS]))
            fields = value.get("fields", {})
            if hasattr(cls, "from_json"):
                return cls.from_json(fields)
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return tuple(value) if isinstance(value, list) else value

    return {k: decode(v) for k, v in params.items()}


def nested_state(model) -> tuple[dict, dict[str, np.ndarray]]:
    """A fitted model inside another one's state: ``(JSON-able state, arrays)``; the outer model
    prefixes the arrays (see :func:`flowad.core.estimator.prefixed`)."""
    state, arrays = model._save_state()
    return {"class": type(model).__name__, "params": _encode_params(model.get_params(deep=False)),
            "state": to_json(state)}, arrays


def nested_model(state: dict, arrays: dict[str, np.ndarray]):
    """Inverse of :func:`nested_state`: the fitted model, rebuilt from its class, parameters and state."""
    cls = model_class(str(state["class"]))
    model = cls(**_decode_params(state["params"], Path("<nested model>")))
    with contextlib.suppress(AttributeError):
        model._validate_params()
    model._load_state(state["state"], arrays)
    return model


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_digest(config: dict) -> str:
    """SHA-256 of a configuration without its own ``config_sha256`` entry (canonical JSON)."""
    body = {k: v for k, v in config.items() if k != "config_sha256"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _read_config(path: Path) -> dict | None:
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return config if isinstance(config, dict) else None


def _is_model_dir(path: Path) -> bool:
    config = _read_config(path / CONFIG_FILE)
    return config is not None and config.get("format") == FORMAT


# ------------------------------------------------------------------------------------------ save
def save(detector, path: str | os.PathLike) -> Path:
    """Save a fitted detector to the folder ``path`` (see the module docstring for the guarantees).

    Args:
        detector: A fitted flowad detector.
        path: The model folder: new, empty, or holding a flowad model (which is replaced).

    Returns:
        The folder written.

    Raises:
        TypeError: If ``detector`` is not a flowad model class.
        ValueError: If it is not fitted, or ``path`` is a file or holds files but no flowad model.
    """
    if not is_model(detector):
        raise TypeError(f"detector must be a flowad detector, got {type(detector).__name__} (PyOD peers cannot be "
                        f"saved: they would need pickle)")
    if not any(k.endswith("_") and not k.startswith("_") for k in vars(detector)):
        raise ValueError(f"detector must be fitted before saving ({type(detector).__name__} is not)")
    path = Path(path)
    check_model_target(path)
    files = model_files(detector)
    _write_model_files(path, files)
    return path


def check_model_target(path: Path) -> None:
    """Refuse a model folder that is a file, or holds files but no flowad model (before any work)."""
    if path.exists() and not path.is_dir():
        raise ValueError(f"path {str(path)!r} is a file; a model is saved as a folder")
    if path.is_dir() and not _is_model_dir(path):
        others = [p for p in path.iterdir() if TEMP_MARK not in p.name and p.name not in (CONFIG_FILE, WEIGHTS_FILE)]
        if others:
            raise ValueError(f"path {str(path)!r} holds files that are not a flowad model; refusing to overwrite "
                             f"(choose a new or empty folder)")


def model_files(detector) -> dict[str, bytes]:
    """The contents of ``config.json`` and ``weights.safetensors`` for a fitted detector."""
    state, arrays = detector._save_state()
    weights = save_safetensors({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "flowad_version": __version__,
        "class": type(detector).__name__,
        "params": _encode_params(detector.get_params(deep=False)),
        "state": to_json(state),
        "weights_sha256": _sha256(weights),
    }
    config["config_sha256"] = config_digest(config)
    return {CONFIG_FILE: json.dumps(config, indent=2).encode(), WEIGHTS_FILE: weights}


def _write_model_files(path: Path, files: dict[str, bytes]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path, files)
    _remove_old_style_leftovers(path)
    staged = [(temporary_path(path / name), path / name) for name in (WEIGHTS_FILE, CONFIG_FILE)]
    try:
        for tmp, target in staged:  # the weights go first (see the module docstring)
            write_new_file(tmp, files[target.name])
        for tmp, target in staged:
            os.replace(tmp, target)
        fsync_folder(path)
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


def _remove_old_style_leftovers(path: Path) -> None:
    """Folders that flowad 0.1's save left beside a model when killed (``.name.tmp-*``, ``.name.old-*``),
    removed only when they hold nothing but model files."""
    for pattern in (f".{path.name}.tmp-*", f".{path.name}.old-*"):
        for stale in path.parent.glob(pattern):
            if stale.is_dir() and {p.name for p in stale.iterdir()} <= {CONFIG_FILE, WEIGHTS_FILE}:
                shutil.rmtree(stale, ignore_errors=True)


# ------------------------------------------------------------------------------------------ load
def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"cannot load model {str(path)!r}: {why}")


def _pending_config(path: Path, weights_sha256: str) -> dict | None:
    """The configuration a killed save left in a temporary file, when it belongs to these weights."""
    for candidate in sorted(path.glob(f".{CONFIG_FILE}{TEMP_MARK}*")):
        config = _read_config(candidate)
        if (config is not None and config.get("format") == FORMAT and config.get("weights_sha256") == weights_sha256
                and config.get("config_sha256") == config_digest(config)):
            logger.warning("model %s: completing a save that was interrupted (using its new configuration)", path)
            return config
    return None


def load(path: str | os.PathLike, device: str | None = None, backbone=None):
    """Load a model saved by :func:`save`.

    Args:
        path: The model folder.
        device: Override the saved ``device`` parameter of torch-based detectors (e.g. ``"cpu"``).
            A model saved with ``device="cuda"`` loads on the CPU where no GPU is available.
        backbone: For image models with a feature backbone: the backbone to score with, in place
            of the saved ``backbone`` parameter. Needed for models fitted on a custom
            ``torch.nn.Module`` (its code is not saved); it must be the same network (the file
            records its weights' digest and stages and refuses another one).

    Returns:
        The fitted detector, giving the same scores as the one saved.

    Raises:
        FileNotFoundError: If ``path`` has no model files.
        ValueError: If the files are not a flowad model, were truncated or damaged, come from a
            newer flowad, or their configuration does not fit their weights.
    """
    path = Path(path)
    if path.is_file():
        raise FileNotFoundError(f"no flowad model at {str(path)!r}: it is a file; a model is a folder with "
                                f"{CONFIG_FILE} and {WEIGHTS_FILE}")
    if (path / "pipeline.json").is_file() and not (path / CONFIG_FILE).is_file():
        raise _refuse(path, "it is a flowad 0.1 IACT separator folder (pipeline.json); refit it with 'flowad iact fit'")
    if not (path / WEIGHTS_FILE).is_file() or not ((path / CONFIG_FILE).is_file()
                                                     or any(path.glob(f".{CONFIG_FILE}{TEMP_MARK}*"))):
        raise FileNotFoundError(f"no flowad model at {str(path)!r} (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    if not (path / CONFIG_FILE).is_file():  # the first save into this folder was killed between its renames
        config = _pending_config(path, _sha256((path / WEIGHTS_FILE).read_bytes()))
        if config is None:
            raise FileNotFoundError(f"no flowad model at {str(path)!r} (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    else:
        try:
            config = json.loads((path / CONFIG_FILE).read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise _refuse(path, f"{CONFIG_FILE} is not valid JSON ({err})") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _refuse(path, "not a flowad model file")
    if config.get("config_sha256") != config_digest(config):
        raise _refuse(path, f"{CONFIG_FILE} was modified after saving (checksum mismatch)")
    weights = (path / WEIGHTS_FILE).read_bytes()
    digest = _sha256(weights)
    if digest != config.get("weights_sha256"):
        config = _pending_config(path, digest)
        if config is None:
            raise _refuse(path, f"{WEIGHTS_FILE} is corrupted or truncated (checksum mismatch)")
    version = config.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _refuse(path, f"unknown model format {version!r}")
    if version > FORMAT_VERSION:
        raise _refuse(path, f"saved by flowad {config.get('flowad_version', '?')} in model format {version}; this "
                            f"flowad ({__version__}) reads formats up to {FORMAT_VERSION}: upgrade flowad")
    if not isinstance(config.get("params"), dict) or not isinstance(config.get("state"), dict):
        raise _refuse(path, f"{CONFIG_FILE} lacks its params or state")
    try:
        arrays = load_safetensors(weights)
    except SafetensorError as err:
        raise _refuse(path, f"{WEIGHTS_FILE} is unreadable ({err})") from err
    for step in range(version, FORMAT_VERSION):
        config = MIGRATIONS[step](config)
    try:
        cls = model_class(str(config.get("class", "")))
    except ValueError as err:
        raise _refuse(path, str(err)) from None
    params = _decode_params(config["params"], path)
    if backbone is not None:
        if "backbone" not in params:
            raise ValueError(f"backbone= is only for image models with a feature backbone; {str(path)!r} holds a "
                             f"{config.get('class')}")
        params["backbone"] = backbone
    elif isinstance(params.get("backbone"), dict) and params["backbone"].get(_BACKBONE):
        raise _refuse(path, f"it was fitted with the custom backbone {params['backbone'].get('name')!r}, whose code a "
                            f"model file does not hold; load it with flowad.io.load(path, backbone=<the same module>)")
    if "device" in params:
        params["device"] = _usable_device(device if device is not None else params["device"], path)
    try:  # a configuration edited by hand (checksum recomputed) gets no further than this
        detector = cls(**params)
        with contextlib.suppress(AttributeError):
            detector._validate_params()
        detector._load_state(config["state"], arrays)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
        why = f"{type(err).__name__}: {err}"
        raise _refuse(path, f"the weights and state do not fit the configuration ({why})") from err
    return detector


def _usable_device(device, path: Path):
    """``device``, or ``"cpu"`` when it names CUDA and this machine has none."""
    if isinstance(device, str) and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            logger.info("model %s was saved for %s; no GPU here, loading on the CPU", path, device)
            return "cpu"
    return device


_META_LOCK = threading.Lock()


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Modules built inside this block put their parameters on PyTorch's ``meta`` device: shapes
    without memory (the technique of accelerate's ``init_empty_weights``). Buffers stay real, since
    constructors compute with them (zuko's masks)."""
    from torch import nn

    with _META_LOCK:
        register = nn.Module.register_parameter

        def on_meta(module, name, param):
            if param is not None:
                param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
            register(module, name, param)

        nn.Module.register_parameter = on_meta
        try:
            yield
        finally:
            nn.Module.register_parameter = register


def check_module_shapes(build: Callable[[], Any], arrays: dict[str, np.ndarray], what: str) -> None:
    """Refuse weights whose shapes differ from the network a configuration describes, before the
    network is built for real: it is first built with its parameters on PyTorch's ``meta`` device,
    which allocates no memory for them.

    Args:
        build: Makes the untrained ``torch.nn.Module`` from the configuration.
        arrays: Its weights from the file, by ``state_dict`` key.
        what: The network's name, for the message.

    Raises:
        ValueError: Naming the first entry whose shape (or presence) differs.
    """
    with _parameters_on_meta():
        module = build()
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in arrays.items()}
    for key in sorted(expected.keys() | found.keys()):
        if expected.get(key) != found.get(key):
            raise ValueError(f"the configuration describes a {what} whose {key!r} has shape {expected.get(key)}, "
                             f"but {WEIGHTS_FILE} holds {found.get(key)}")


# ------------------------------------------------------------------------------------ migrations
#: Parameters that flowad 0.1's FlowDetector held at the top level and 0.2 keeps in ``FlowOptions``.
_FLOW_OPTIONS_V1 = ("batch_size", "weight_decay", "patience", "clip_grad_norm", "validation_fraction",
                    "validation_trim", "dequantize", "pca_components", "trim_fraction", "threshold")


def _flow_v1_to_v2(cls: str, params: dict) -> tuple[str, dict]:
    """flowad 0.1's one ``FlowDetector`` class -> 0.2's flow, ensemble or two-class detector."""
    params = dict(params)
    params.setdefault("validation_trim", 0.0)  # parameters added after the first 0.1 files
    params.setdefault("tail_bound", None)
    if params.get("threshold") == "quantile":
        params["threshold"] = "conformal"
    options = {k: params.pop(k) for k in _FLOW_OPTIONS_V1 if k in params}
    params["options"] = {_OPTIONS: "FlowOptions", "fields": options}
    n_flows, combine = params.pop("n_flows", 1), params.pop("combine", "mixture")
    negatives = params.pop("negatives", None)
    floor, weight = params.pop("negative_floor", "auto"), params.pop("negative_weight", 1.0)
    if n_flows and n_flows > 1:
        params.pop("score_type", None)
        return "FlowEnsembleDetector", {**params, "n_flows": n_flows, "combine": combine}
    if negatives is not None:
        return "TwoClassFlowDetector", {**params, "negatives": negatives, "negative_floor": floor,
                                        "negative_weight": weight}
    return cls, params


def _v1_to_v2(config: dict) -> dict:
    """Format 1 (flowad 0.1) -> 2: the flow detector's options object and its ensemble and two-class
    classes, explicit defaults for parameters added within 0.1; no calibration scores (p-values need
    a refit)."""
    config = dict(config, params=dict(config["params"]), format_version=2)
    cls = config.get("class")
    if cls == "FlowDetector":
        config["class"], config["params"] = _flow_v1_to_v2(cls, config["params"])
    if cls == "OneClassSVMDetector":  # 0.1 kept libsvm's scale, whose scores grow with the training rows
        config["state"] = dict(config["state"], raw_libsvm_offset_=True)
    if cls == "FastFlowDetector":
        config["params"].setdefault("input_size", None)
        config["params"].setdefault("reflect_margin", 0)
    detector = config["params"].get("detector")
    if cls == "WindowDetector" and isinstance(detector, dict) and _NESTED in detector:
        inner = _v1_to_v2({"class": detector[_NESTED], "params": dict(detector.get("params", {}))})
        config["params"]["detector"] = {_NESTED: inner["class"], "params": inner["params"]}
    return config


#: Classes whose ``options`` is a ``FlowOptions`` (a float64 flow network when scoring, before format 3).
_FLOW_CLASSES = ("FlowDetector", "FlowEnsembleDetector", "TwoClassFlowDetector", "FlowRatioClassifier")


def _v2_to_v3(config: dict) -> dict:
    """Format 2 -> 3: tabular flows written before float32 scoring keep scoring in float64, so
    that a file's scores do not move."""
    config = dict(config, params=dict(config["params"]), format_version=3)
    if config.get("class") in _FLOW_CLASSES:
        options = config["params"].get("options") or {_OPTIONS: "FlowOptions", "fields": {}}
        config["params"]["options"] = dict(options, fields={**options.get("fields", {}), "scoring_dtype": "float64"})
    detector = config["params"].get("detector")
    if isinstance(detector, dict) and _NESTED in detector:  # a window detector's inner model
        inner = _v2_to_v3({"class": detector[_NESTED], "params": dict(detector.get("params", {}))})
        config["params"]["detector"] = {_NESTED: inner["class"], "params": inner["params"]}
    return config


def _v3_to_v4(config: dict) -> dict:
    """Format 3 -> 4: FastFlow files written before ``image_score_sigma`` existed read their image
    score off the blurred map they return, so that a file's scores (and its threshold) do not move."""
    config = dict(config, params=dict(config["params"]), format_version=4)
    if config.get("class") == "FastFlowDetector":
        config["params"].setdefault("image_score_sigma", config["params"].get("smooth_sigma", 0.0))
    return config


#: ``MIGRATIONS[v]`` turns a format-``v`` configuration into format ``v + 1``.
MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4}
