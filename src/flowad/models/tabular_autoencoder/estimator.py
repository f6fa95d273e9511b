"""``AutoencoderDetector``: a PyTorch MLP autoencoder scored by reconstruction error."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval
from torch import nn

from flowad.core.distributed import agreed_random_state
from flowad.core.estimator import BaseDetector, prefixed, unprefixed
from flowad.core.model_files import check_module_shapes
from flowad.core.preprocessing import TabularScaler
from flowad.core.splits import HOLDOUT_FRACTION
from flowad.core.threads import resolve_threads
from flowad.core.training import (
    MIN_VALIDATION,
    EpochCallback,
    TrainingConfig,
    TrainingHistory,
    batched,
    resolve_device,
    seeded_torch,
    split_validation,
    train_module,
    warn_if_untrained,
)

__all__ = ["AutoencoderDetector", "MLPAutoencoder"]


class MLPAutoencoder(nn.Module):
    """Dense autoencoder ``D -> hidden -> bottleneck -> reversed(hidden) -> D``.

    Args:
        features: Input width ``D``.
        hidden_features: Widths of the encoder's hidden layers (mirrored in the decoder).
        bottleneck: Width of the code.
        dropout: Dropout rate after every hidden layer.
    """

    def __init__(self, features: int, hidden_features: tuple[int, ...], bottleneck: int, dropout: float) -> None:
        super().__init__()

        def stack(widths: list[int]) -> nn.Sequential:
            layers: list[nn.Module] = []
            for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
                layers.append(nn.Linear(a, b))
                if i < len(widths) - 2:
                    layers += [nn.ReLU(), nn.Dropout(dropout)]
            return nn.Sequential(*layers)

        hidden = list(hidden_features)
        self.encoder = stack([features, *hidden, bottleneck])
        self.decoder = stack([bottleneck, *reversed(hidden), features])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction of ``x``, both of shape ``(N, D)``."""
        return self.decoder(self.encoder(x))


def _reconstruction_error(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per row, shape ``(N,)``."""
    return ((module(x) - x) ** 2).mean(dim=1)


class AutoencoderDetector(BaseDetector):
    """Reconstruction-error detector (a classic baseline; e.g. Sakurada and Yairi, MLSDA 2014).

    Rows are robust-standardised; ``score_samples`` is minus the mean squared reconstruction error
    per row in standardised units.

    Args:
        hidden_features: Encoder hidden widths (mirrored in the decoder).
        bottleneck: Code width; ``None`` picks ``max(1, D // 4)``.
        dropout: Dropout rate in the hidden layers.
        contamination: Share of new normal rows flagged: ``"auto"`` (1%) or a float in (0, 0.5].
        calibration: ``"auto"``, ``"cross"`` or ``"split"`` (:mod:`flowad.core.calibration`).
        max_epochs: Most passes over the training data.
        batch_size: Samples per optimisation step.
        learning_rate: Adam's learning rate.
        weight_decay: Adam's weight decay.
        validation_fraction: Share of the training data held out for early stopping.
        patience: Epochs without a better validation loss before training stops.
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        threads: PyTorch threads (``None``: one for networks narrower than 512; see FlowDetector).
        random_state: Seed; the same seed gives identical results on CPU.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "hidden_features": ["array-like"],
        "bottleneck": [Interval(Integral, 1, None, closed="left"), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        hidden_features: tuple[int, ...] = (64, 32),
        bottleneck: int | None = None,
        dropout: float = 0.1,
        contamination: float | str = "auto",
        calibration: str = "auto",
        max_epochs: int = 100,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-5,
        validation_fraction: float = HOLDOUT_FRACTION,
        patience: int = 10,
        device: str = "auto",
        threads: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.hidden_features = hidden_features
        self.bottleneck = bottleneck
        self.dropout = dropout
        self.contamination = contamination
        self.calibration = calibration
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.threads = threads
        self.random_state = random_state

    def _threads(self) -> int | None:
        return resolve_threads(self.threads, max((*tuple(self.hidden_features), 1)))

    def _build_module(self, features: int) -> MLPAutoencoder:
        code = self.bottleneck if self.bottleneck is not None else max(1, features // 4)
        return MLPAutoencoder(features, tuple(self.hidden_features), code, self.dropout)

    def _fit_model(self, X: np.ndarray, labels: np.ndarray, callback: EpochCallback | None = None) -> None:
        device = resolve_device(self.device)
        rng = np.random.default_rng(agreed_random_state(self.random_state))  # one seed for all DDP ranks
        seed = int(rng.integers(2**31 - 1))
        self.scaler_ = TabularScaler.fit(X, dequantize=False)
        self.device_ = device
        Xs = self.scaler_.model_input(X)
        train_idx, val_idx = split_validation(len(X), self.validation_fraction, rng, MIN_VALIDATION)
        data = torch.as_tensor(Xs, dtype=torch.float32, device=device)
        with seeded_torch(seed):  # initial weights and dropout masks
            module = self._build_module(Xs.shape[1]).to(device)
            self.history_ = train_module(
                module,
                _reconstruction_error,
                train=data[train_idx],
                validation=data[val_idx],
                config=TrainingConfig(
                    max_epochs=self.max_epochs, batch_size=self.batch_size, learning_rate=self.learning_rate,
                    weight_decay=self.weight_decay, patience=self.patience,
                ),
                generator=torch.Generator(device=device).manual_seed(seed),
                callback=callback,
            )
        warn_if_untrained(self.history_, "autoencoder", self.learning_rate)
        self.module_ = module.eval()
        self.n_epochs_ = len(self.history_.train_loss)

    def _model_scores(self, X: np.ndarray) -> np.ndarray:
        """Minus the mean squared reconstruction error per row, shape ``(N,)``."""
        data = torch.as_tensor(self.scaler_.model_input(X), dtype=torch.float32, device=self.device_)
        with torch.no_grad():
            error = batched(lambda b: _reconstruction_error(self.module_, b), data)
        return -error.double().cpu().numpy()

    def _save_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        state, arrays = super()._save_state()
        state["n_epochs_"] = self.n_epochs_
        arrays.update(prefixed("scaler", self.scaler_.to_arrays()))
        arrays.update(prefixed("module", {k: v.detach().cpu().numpy() for k, v in self.module_.state_dict().items()}))
        return state, arrays

    def _load_state(self, state: dict, arrays: dict[str, np.ndarray]) -> None:
        super()._load_state(state, arrays)
        self.n_epochs_ = int(state["n_epochs_"])
        self.history_ = TrainingHistory()
        self.scaler_ = TabularScaler.from_arrays(unprefixed("scaler", arrays))
        self.device_ = resolve_device(self.device)
        width = max(self.scaler_.n_model_features, 1)
        weights = unprefixed("module", arrays)
        check_module_shapes(lambda: self._build_module(width), weights, "autoencoder")
        module = self._build_module(width)
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        self.module_ = module.to(self.device_).eval()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
