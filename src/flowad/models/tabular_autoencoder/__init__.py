"""A dense autoencoder for table rows, scored by reconstruction error (a baseline)."""

from flowad.models.tabular_autoencoder.estimator import AutoencoderDetector, MLPAutoencoder

__all__ = ["AutoencoderDetector", "MLPAutoencoder"]
