"""A whole-image Glow density (the model of the published-study reproductions)."""

from flowad.models.glow_density.estimator import GlowConfig, GlowDensity

__all__ = ["GlowConfig", "GlowDensity"]
