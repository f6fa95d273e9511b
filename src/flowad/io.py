"""Saving and loading models: a directory with ``config.json`` and ``weights.safetensors``.

``config.json`` holds the class name, hyper-parameters, fitted state that is not an array
(threshold, feature count and names, training history), the flowad version, the SHA-256 of the
weights file and the SHA-256 of the configuration itself. ``weights.safetensors`` holds every array
(network weights, preprocessing statistics). Nothing is ever pickled or unpickled.

Loading refuses a model whose checksums do not match (truncated or edited files), whose flowad
version differs in major or minor number, or that is not a flowad model at all. Saving writes a
temporary directory next to the target and swaps it in with renames, so an interrupted save leaves
the previous model intact; it refuses to replace anything that is not a flowad model.

A detector class takes part by being decorated with :func:`register_model` and implementing
``_save_state() -> (state: dict, arrays: dict[str, np.ndarray])`` and
``_load_state(state, arrays)`` (called on a fresh instance built from the saved parameters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from flowad._version import __version__

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "WEIGHTS_FILE",
    "config_digest",
    "load",
    "register_model",
    "save",
    "to_json",
    "write_directory_atomically",
]

FORMAT = "flowad-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"

_MODEL_CLASSES: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: let :func:`load` rebuild instances of ``cls`` by name."""
    _MODEL_CLASSES[cls.__name__] = cls
    return cls


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


def _encode_params(params: dict) -> dict:
    """Hyper-parameters as JSON; a flowad model among them becomes ``{_NESTED: class, "params": ...}``."""
    def encode(value):
        cls = type(value)
        if _MODEL_CLASSES.get(cls.__name__) is cls:
            return {_NESTED: cls.__name__, "params": _encode_params(value.get_params(deep=False))}
        return to_json(value)

    return {str(k): encode(v) for k, v in params.items()}


def _decode_params(params: dict, path: Path) -> dict:
    """Inverse of :func:`_encode_params` (JSON lists back to tuples)."""
    def decode(value):
        if isinstance(value, dict) and _NESTED in value:
            cls = _MODEL_CLASSES.get(str(value[_NESTED]))
            if cls is None:
                raise _refuse(path, f"unknown nested model class {value[_NESTED]!r}")
            return cls(**_decode_params(value.get("params", {}), path))
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        return tuple(value) if isinstance(value, list) else value

    return {k: decode(v) for k, v in params.items()}


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def config_digest(config: dict) -> str:
    """SHA-256 of a configuration without its own ``config_sha256`` entry (canonical JSON)."""
    body = {k: v for k, v in config.items() if k != "config_sha256"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _is_model_dir(path: Path) -> bool:
    try:
        return json.loads((path / CONFIG_FILE).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def save(detector, path: str | os.PathLike) -> Path:
    """Save a fitted detector to the directory ``path`` (created or atomically replaced).

    Args:
        detector: A fitted flowad detector.
        path: Target directory. An existing one is replaced only if it is a flowad model or empty.

    Returns:
        The directory written.

    Raises:
        TypeError: If ``detector`` is not a flowad model class.
        ValueError: If it is not fitted, or ``path`` holds something other than a flowad model.
    """
    cls = type(detector)
    if _MODEL_CLASSES.get(cls.__name__) is not cls:
        raise TypeError(f"detector must be a flowad detector, got {cls.__name__}")
    if not hasattr(detector, "offset_"):
        raise ValueError(f"detector must be fitted before saving ({cls.__name__} is not)")
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"path {str(path)!r} is a file; a model is saved as a directory")
        if any(path.iterdir()) and not _is_model_dir(path):
            raise ValueError(f"path {str(path)!r} holds files that are not a flowad model; refusing to overwrite")

    state, arrays = detector._save_state()
    weights = save_safetensors({k: np.ascontiguousarray(v) for k, v in arrays.items()})
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "flowad_version": __version__,
        "class": cls.__name__,
        "params": _encode_params(detector.get_params(deep=False)),
        "state": to_json(state),
        "weights_sha256": _sha256(weights),
    }
    config["config_sha256"] = config_digest(config)
    files = {CONFIG_FILE: json.dumps(config, indent=2).encode(), WEIGHTS_FILE: weights}
    write_directory_atomically(path, lambda tmp: _write_files(tmp, files))
    return path


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        with open(folder / name, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def write_directory_atomically(path: Path, fill: Callable[[Path], None]) -> None:
    """Build a directory with ``fill(tmp)`` next to ``path``, then swap it in with renames: an
    interrupted write leaves the previous ``path`` intact (callers check first that ``path`` may be
    replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
    try:
        fill(tmp)
        if path.exists():
            os.rename(path, old)
        os.rename(tmp, path)
    except BaseException:
        if old.exists() and not path.exists():
            os.rename(old, path)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"cannot load model {str(path)!r}: {why}")


def load(path: str | os.PathLike, device: str | None = None):
    """Load a model saved by :func:`save`.

    Args:
        path: The model directory.
        device: Override the saved ``device`` parameter of torch-based detectors (e.g. ``"cpu"``).

    Returns:
        The fitted detector, giving the same scores as the one saved.

    Raises:
        FileNotFoundError: If ``path`` has no model files.
        ValueError: If the files are not a flowad model, were truncated or edited, or come from an
            incompatible flowad version.
    """
    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no flowad model at {str(path)!r} (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        config = json.loads((path / CONFIG_FILE).read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise _refuse(path, f"{CONFIG_FILE} is not valid JSON ({err})") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _refuse(path, "not a flowad model file")
    if config.get("config_sha256") != config_digest(config):
        raise _refuse(path, f"{CONFIG_FILE} was modified after saving (checksum mismatch)")
    if config.get("format_version") != FORMAT_VERSION:
        raise _refuse(path, f"model format {config.get('format_version')} is not supported (need {FORMAT_VERSION})")
    saved = str(config.get("flowad_version", "?"))
    if saved.split(".")[:2] != __version__.split(".")[:2]:
        raise _refuse(path, f"saved by flowad {saved}, this is flowad {__version__}; use a matching version")
    weights = (path / WEIGHTS_FILE).read_bytes()
    if _sha256(weights) != config.get("weights_sha256"):
        raise _refuse(path, f"{WEIGHTS_FILE} is corrupted or truncated (checksum mismatch)")
    cls = _MODEL_CLASSES.get(config.get("class", ""))
    if cls is None:
        raise _refuse(path, f"unknown model class {config.get('class')!r}")
    try:
        arrays = load_safetensors(weights)
    except SafetensorError as err:
        raise _refuse(path, f"{WEIGHTS_FILE} is unreadable ({err})") from err
    if not isinstance(config.get("params"), dict) or not isinstance(config.get("state"), dict):
        raise _refuse(path, f"{CONFIG_FILE} lacks its params or state")
    # a parameter added after a file was saved takes the value that reproduces that file's behaviour
    params = {**getattr(cls, "params_of_older_files", {}), **_decode_params(config["params"], path)}
    if device is not None and "device" in params:
        params["device"] = device
    try:  # a config edited by hand (checksum recomputed) must not get further than this
        detector = cls(**params)
        with contextlib.suppress(AttributeError):
            detector._validate_params()
        detector._load_state(config["state"], arrays)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as err:
        why = f"{type(err).__name__}: {err}"
        raise _refuse(path, f"the weights and state do not fit the configuration ({why})") from err
    return detector
