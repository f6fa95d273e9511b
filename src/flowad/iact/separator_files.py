"""Separator model files: a directory with ``pipeline.json`` (the pipeline's settings, learned
feature scales and cut, flowad version, a SHA-256 of itself) and ``detector/``, a flowad model
directory (:mod:`flowad.io`). Written atomically (temporary directory, then renames); loading checks
the checksum and the version.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from flowad import io
from flowad._version import __version__
from flowad.iact.camera import CameraGeometry
from flowad.iact.pipeline import GammaHadronSeparator

__all__ = ["DETECTOR_DIR", "FORMAT", "PIPELINE_FILE", "load_separator", "save_separator"]

FORMAT = "flowad-iact-separator"
PIPELINE_FILE = "pipeline.json"
DETECTOR_DIR = "detector"


def _read_body(path: Path) -> dict:
    """The parsed ``pipeline.json`` of ``path``, or ``{}`` when it is missing or not a JSON object."""
    try:
        body = json.loads((path / PIPELINE_FILE).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def save_separator(separator: GammaHadronSeparator, path: str | os.PathLike) -> Path:
    """Save a fitted separator to the directory ``path``: ``pipeline.json`` and ``detector/``.

    The directory is written next to the target and swapped in with renames, so an interrupted save
    leaves the previous one intact. Only an empty directory or an earlier separator is replaced.

    Raises:
        ValueError: Not fitted, or ``path`` holds something else.
    """
    if not hasattr(separator, "detector_"):
        raise ValueError("separator must be fitted before saving")
    path = Path(path)
    if path.exists() and (not path.is_dir() or (any(path.iterdir()) and _read_body(path).get("format") != FORMAT)):
        raise ValueError(f"path {str(path)!r} holds files that are not a flowad IACT separator; refusing to overwrite")
    params = {k: v for k, v in separator.get_params(deep=False).items() if k != "detector"}
    camera = params["camera"]
    if isinstance(camera, CameraGeometry):
        params["camera"] = {"name": camera.name, "pix_type": camera.pix_type,
                            **{k: getattr(camera, k).tolist() for k in ("pix_x", "pix_y", "pix_area")}}
    body = {"format": FORMAT, "format_version": 1, "flowad_version": __version__, "params": io.to_json(params),
            "state": io.to_json({"features_": list(separator.features_), "scales_": separator.scales_,
                                  "cut_": separator.cut_, "n_train_": separator.n_train_,
                                  "n_invalid_train_": separator.n_invalid_train_})}
    body["config_sha256"] = io.config_digest(body)
    def fill(tmp: Path) -> None:
        io.save(separator.detector_, tmp / DETECTOR_DIR)
        (tmp / PIPELINE_FILE).write_text(json.dumps(body, indent=2))

    _write_directory_atomically(path, fill)
    return path


def _write_directory_atomically(path: Path, fill: Callable[[Path], None]) -> None:
    """Build a folder with ``fill(tmp)`` beside ``path``, then swap it in with renames (the folders
    follow the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
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


def load_separator(path: str | os.PathLike, device: str | None = None) -> GammaHadronSeparator:
    """Load a separator written by :func:`save_separator` (checksums and version checked).

    Args:
        path: The separator directory.
        device: Override the detector's saved ``device`` (e.g. ``"cpu"``).

    Raises:
        FileNotFoundError: No separator there. ValueError: modified files or another flowad version.
    """
    path = Path(path)
    if not (path / PIPELINE_FILE).is_file():
        raise FileNotFoundError(f"no flowad IACT separator at {str(path)!r} (expected {PIPELINE_FILE} and "
                                f"{DETECTOR_DIR}/; write one with 'flowad iact fit')")
    body = _read_body(path)
    if body.get("format") != FORMAT:
        raise ValueError(f"cannot load separator {str(path)!r}: {PIPELINE_FILE} is not a flowad IACT separator")
    if body.get("config_sha256") != io.config_digest(body):
        raise ValueError(f"cannot load separator {str(path)!r}: {PIPELINE_FILE} was modified (checksum mismatch)")
    saved = str(body.get("flowad_version", "?"))
    if saved.split(".")[:2] != __version__.split(".")[:2]:
        raise ValueError(f"cannot load separator {str(path)!r}: saved by flowad {saved}, this is {__version__}")
    params = dict(body["params"])
    if isinstance(params["camera"], dict):
        params["camera"] = CameraGeometry(**params["camera"])
    for key in ("source", "features"):
        if params.get(key) is not None:
            params[key] = tuple(params[key])
    detector = io.load(path / DETECTOR_DIR, device=device)
    separator = GammaHadronSeparator(**params, detector=detector)
    state = body["state"]
    separator.detector_, separator.features_, separator.cut_ = detector, tuple(state["features_"]), float(state["cut_"])
    separator.scales_ = {k: float(v) for k, v in state["scales_"].items()}
    separator.n_train_, separator.n_invalid_train_ = int(state["n_train_"]), int(state["n_invalid_train_"])
    return separator
