"""Saving and loading models (the public import path; the implementation is
:mod:`flowad.core.model_files`).

Example:
    >>> import numpy as np, tempfile
    >>> from flowad import IsolationForestDetector, io
    >>> detector = IsolationForestDetector(random_state=0).fit(np.random.default_rng(0).normal(size=(100, 2)))
    >>> loaded = io.load(io.save(detector, tempfile.mkdtemp() + "/model"))
"""

from flowad.core.model_files import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    config_digest,
    is_model,
    load,
    save,
    to_json,
)

__all__ = ["CONFIG_FILE", "FORMAT", "FORMAT_VERSION", "WEIGHTS_FILE", "config_digest", "is_model", "load", "save",
           "to_json"]
