"""ADBench ``.npz`` sets (``X``, ``y``) found offline.

Reference: Han et al., "ADBench: Anomaly Detection Benchmark", NeurIPS 2022, arXiv:2206.09426.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["adbench_root", "list_adbench", "load_adbench", "load_npz_folder"]


def adbench_root(suite: str = "classical") -> Path:
    """Folder of an ADBench suite: ``$FLOWAD_ADBENCH/<suite>``.

    ADBench is not shipped with flowad; point ``FLOWAD_ADBENCH`` at a folder holding one subfolder
    of ``.npz`` files per suite (``classical``, ``mvtec_resnet18``), or give ``flowad bench --suite``
    the folder itself.

    Raises:
        FileNotFoundError: If the variable is not set or the folder does not exist.
    """
    root = os.environ.get("FLOWAD_ADBENCH")
    if not root:
        raise FileNotFoundError(f"ADBench suite {suite!r}: set FLOWAD_ADBENCH to the folder that holds the suites, "
                                f"or give the suite's folder itself")
    folder = Path(root) / suite
    if not folder.is_dir():
        raise FileNotFoundError(f"ADBench suite {suite!r} not found in FLOWAD_ADBENCH={root}")
    return folder


def list_adbench(suite: str = "classical") -> list[str]:
    """Names of the sets in a suite (``"thyroid"``, ``"magic.gamma"``, ...), sorted."""
    return sorted(_name(p) for p in adbench_root(suite).glob("*.npz"))


def _name(path: Path) -> str:
    stem = path.stem
    head, _, rest = stem.partition("_")
    return rest if head.isdigit() and rest else stem


def load_adbench(name: str, suite: str = "classical") -> tuple[np.ndarray, np.ndarray]:
    """Load one set by name (``"thyroid"`` or ``"38_thyroid"``, case-insensitive).

    Returns:
        ``X`` of shape ``(N, D)`` float64 and ``y`` of shape ``(N,)`` int (1 = anomaly).
    """
    root = adbench_root(suite)
    wanted = name.lower().removesuffix(".npz")
    for path in sorted(root.glob("*.npz")):
        if wanted in (path.stem.lower(), _name(path).lower()):
            with np.load(path, allow_pickle=False) as data:
                return data["X"].astype(np.float64), data["y"].astype(np.int64)
    raise ValueError(f"ADBench set {name!r} not in {root} (have: {', '.join(list_adbench(suite))})")


def load_npz_folder(folder: str | Path) -> dict[str, Path]:
    """The ADBench-format sets in any folder: name -> ``.npz`` path, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"suite folder not found: {folder}")
    return dict(sorted((_name(p), p) for p in folder.glob("*.npz")))
