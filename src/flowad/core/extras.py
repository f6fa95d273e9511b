"""Optional parts of flowad: a missing one is one line that says what to install.

Example:
    >>> require("math", "scale", "ONNX export").sqrt(4.0)
    2.0
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["MissingExtra", "extra_installed", "install_hint", "require"]


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message holds the install command."""


def install_hint(extra: str) -> str:
    """The command that installs an extra, as the user types it."""
    return f"pip install 'flowad[{extra}]'"


def extra_installed(*modules: str) -> bool:
    """Whether every module can be imported (found without importing it)."""
    return all(importlib.util.find_spec(m.split(".")[0]) is not None for m in modules)


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`MissingExtra` naming the install command.

    Args:
        module: The module to import (``"onnxscript"``, ``"dask.dataframe"``, ...).
        extra: The flowad extra that installs it (``"scale"``, ``"bench"``, ...).
        feature: What needs it, for the message (``"ONNX export"``).
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        missing = getattr(error, "name", None) or module
        raise MissingExtra(f"{feature} needs {missing}, which is not installed: {install_hint(extra)}") from None
