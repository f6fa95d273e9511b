"""The package version, read by ``pyproject.toml`` and written into every model file."""

__all__ = ["__version__"]

__version__ = "0.2.0"
