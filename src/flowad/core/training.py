"""One training loop for every torch-based detector.

Mini-batch Adam on a per-sample loss, with a held-out validation split, early stopping on the
validation loss, an optional cosine decay of the learning rate over the most steps training can
take, gradient-norm clipping and a divergence guard: a non-finite training loss, or a
validation loss that blows up, restores the best weights seen so far and halves the learning rate.
After ``max_restarts`` such recoveries training stops with the best weights.

Inside a ``torch.distributed`` process group of two or more ranks (``torchrun``) the same loop is
data-parallel: see :mod:`flowad.core.distributed`.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor, nn

from flowad.core.distributed import RankSync
from flowad.core.progress import report
from flowad.core.splits import MIN_VALIDATION, split_validation

__all__ = [
    "MIN_VALIDATION",
    "EpochCallback",
    "TrainingConfig",
    "TrainingHistory",
    "batched",
    "resolve_device",
    "scheduled_learning_rate",
    "seeded_torch",
    "split_validation",
    "train_module",
    "trimmed_mean",
    "warn_if_untrained",
]

logger = logging.getLogger(__name__)


#: Called after every epoch with ``(epoch, train_loss, validation_loss)``.
EpochCallback = Callable[[int, float, float], None]


@dataclass
class TrainingConfig:
    """Optimisation settings shared by the torch detectors."""

    max_epochs: int = 200
    batch_size: int = 256
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    patience: int = 20
    clip_grad_norm: float = 5.0
    max_restarts: int = 5
    #: A validation loss above ``best + max(blowup_nats, |best|)`` counts as a divergence.
    blowup_nats: float = 10.0
    #: Share of the validation rows with the highest losses left out of the early-stopping statistic
    #: (a trimmed mean; one-class losses only). One held-out row far outside the training rows can
    #: otherwise dominate the mean and stop training after a few epochs.
    validation_trim: float = 0.0
    #: Most optimizer steps in all; ``None``: no budget beyond ``max_epochs``.
    max_steps: int | None = None
    #: Rows per epoch at most: on larger tables an "epoch" (one validation, one early-stopping
    #: check, one callback) is this many rows of a continuing pass. ``None``: whole passes.
    epoch_rows: int | None = None
    #: Validation rows scored for early stopping at most (a fixed random subset of larger sets).
    max_validation_rows: int | None = None
    #: ``"constant"``, or ``"cosine"``: the learning rate falls from ``learning_rate`` to
    #: ``final_lr_fraction`` of it along half a cosine over the most steps training can take
    #: (``max_steps``, or ``max_epochs`` full epochs), one update per optimizer step.
    lr_schedule: str = "constant"
    final_lr_fraction: float = 0.01


@dataclass
class TrainingHistory:
    """What happened during training."""

    train_loss: list[float] = field(default_factory=list)
    validation_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    best_validation_loss: float = math.inf
    restarts: int = 0
    stopped_early: bool = False
    #: Optimizer steps taken, their batch size, and whether training ended because the step budget
    #: was spent.
    steps: int = 0
    batch_size: int = 0
    hit_step_budget: bool = False

    @classmethod
    def from_state(cls, state: dict) -> TrainingHistory:
        """Inverse of ``dataclasses.asdict`` after a trip through JSON (``None`` stands for NaN and inf)."""
        values = dict(state)
        for name in ("train_loss", "validation_loss"):
            values[name] = [math.nan if v is None else v for v in values.get(name, [])]
        if values.get("best_validation_loss") is None:
            values["best_validation_loss"] = math.inf
        return cls(**values)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when present, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or a torch device, got {device!r}") from err


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Run a block with torch's global RNG seeded, restoring the caller's RNG state afterwards.

    Module constructors (zuko's, torch's layers) draw their initial weights from the global
    generator; this makes them reproducible without changing the global state seen by the user.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def batched(module_fn: Callable[[Tensor], Tensor], X: Tensor, batch_size: int = 4096) -> Tensor:
    """Apply a row-wise function to ``X`` (shape ``(N, ...)``) in chunks; returns the concatenation."""
    if len(X) == 0:
        return module_fn(X)
    return torch.cat([module_fn(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])


def trimmed_mean(values: Tensor, trim: float) -> float:
    """Mean of ``values`` (shape ``(M,)``) without the ``floor(trim * M)`` largest.

    Non-finite values count as largest; with every kept value finite the result is finite.
    """
    drop = int(math.floor(trim * len(values)))
    if drop == 0:
        return values.mean().item()
    values = torch.where(torch.isnan(values), torch.full_like(values, math.inf), values)
    return torch.topk(values, len(values) - drop, largest=False).values.mean().item()


def scheduled_learning_rate(config: TrainingConfig, rate: float, step: int, total: int) -> float:
    """The learning rate of optimizer step ``step`` (from 0) of at most ``total``, for a base ``rate``.

    Constant, or (``config.lr_schedule == "cosine"``) half a cosine from ``rate`` down to
    ``config.final_lr_fraction * rate`` at step ``total`` (Loshchilov & Hutter, "SGDR: Stochastic
    Gradient Descent with Warm Restarts", arXiv:1608.03983, without the restarts).

    Example:
        >>> config = TrainingConfig(lr_schedule="cosine", final_lr_fraction=0.0)
        >>> tuple(round(scheduled_learning_rate(config, 1.0, step, 4), 3) for step in range(5))
        (1.0, 0.854, 0.5, 0.146, 0.0)
    """
    if config.lr_schedule == "constant" or total <= 0:
        return rate
    progress = min(1.0, step / total)
    low = config.final_lr_fraction
    return rate * (low + (1 - low) * 0.5 * (1 + math.cos(math.pi * progress)))


def train_module(
    module: nn.Module,
    loss_fn: Callable[[nn.Module, Tensor], Tensor],
    train: Tensor,
    validation: Tensor,
    config: TrainingConfig,
    generator: torch.Generator,
    augment: Callable[[Tensor, Tensor, torch.Generator], Tensor] | None = None,
    train_extra: Tensor | None = None,
    callback: EpochCallback | None = None,
    train_labels: Tensor | None = None,
    validation_labels: Tensor | None = None,
) -> TrainingHistory:
    """Train ``module`` in place and leave it holding its best validation weights.

    Args:
        module: The model; its parameters are optimised.
        loss_fn: ``loss_fn(module, batch)`` -> per-sample losses of shape ``(B,)``.
        train: Training rows, shape ``(N, D)``, on the module's device.
        validation: Held-out rows, shape ``(M, D)``, scored without augmentation.
        config: Optimisation settings.
        generator: Source of shuffling (and of augmentation noise); on ``train``'s device.
        augment: Optional ``augment(batch, extra_batch, generator)`` applied to each training batch
            (dequantisation noise, for example).
        train_extra: Per-row data for ``augment``, shape ``(N, ...)`` (indexed with the batch).
        callback: Called after each epoch with ``(epoch, train_loss, validation_loss)``.
        train_labels: Labels of the training rows, shape ``(N,)``; when given, the loss is called as
            ``loss_fn(module, batch, labels)`` (two-class training).
        validation_labels: Labels of the validation rows, shape ``(M,)``.

    Returns:
        The loss curves and what the guard did.

    Progress goes to :func:`flowad.core.progress.report` as task ``"training"``: optimizer steps
    done of an upper bound (``max_epochs`` epochs of full length, or ``max_steps``); early stopping
    ends sooner, and the last report then says ``done == total``.

    When a process group of two or more ranks is running (:class:`~flowad.core.distributed.RankSync`),
    every rank must pass the same rows and an identically seeded ``generator``; each takes its share
    of every batch, gradients are averaged by DDP and the losses behind every decision are all-reduced.
    """
    if (train_labels is None) != (validation_labels is None):
        raise ValueError("give both train_labels and validation_labels, or neither")
    sync = RankSync.current()
    if sync is not None:
        sync.check_same("the training data (rows, validation rows, sum)",
                        [len(train), len(validation), float(train.double().sum())], train.device)
        parallel = sync.wrap(module, loss_fn)

    def losses(batch: Tensor, labels: Tensor | None) -> Tensor:
        return loss_fn(module, batch) if labels is None else loss_fn(module, batch, labels)

    if config.lr_schedule not in ("constant", "cosine"):
        raise ValueError(f"lr_schedule must be 'constant' or 'cosine', got {config.lr_schedule!r}")
    history = TrainingHistory()
    lr = config.learning_rate

    def new_optimizer(rate: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(module.parameters(), lr=rate, weight_decay=config.weight_decay)

    optimizer = new_optimizer(lr)
    best_state = copy.deepcopy(module.state_dict())
    stale = 0
    n = len(train)
    batch_size = history.batch_size = max(1, min(config.batch_size, n))
    smallest = 2 if sync is None else max(2, sync.world_size)  # fewer rows than this: the batch is skipped
    if config.max_validation_rows is not None and len(validation) > config.max_validation_rows:
        keep = torch.randperm(len(validation), generator=generator, device=generator.device)
        keep = keep[: config.max_validation_rows].sort().values.to(validation.device)
        validation = validation[keep]
        validation_labels = None if validation_labels is None else validation_labels[keep]

    starts = [start for start in range(0, n, batch_size) if min(batch_size, n - start) >= smallest or n <= 1]

    def index_batches() -> Iterator[Tensor]:
        """Row indices of the training batches, pass after pass, a fresh permutation per pass."""
        while True:
            perm = torch.randperm(n, generator=generator, device=generator.device).to(train.device)
            for start in starts:
                yield perm[start : start + batch_size]

    per_pass = len(starts)
    steps_per_epoch = per_pass
    if config.epoch_rows is not None and n > config.epoch_rows and per_pass:
        steps_per_epoch = min(per_pass, max(1, math.ceil(config.epoch_rows / batch_size)))
    most_steps = config.max_epochs * steps_per_epoch
    if config.max_steps is not None:
        most_steps = min(most_steps, config.max_steps)
    report("training", 0, most_steps)

    def validation_loss() -> float:
        module.eval()
        with torch.no_grad():
            if validation_labels is None and (sync is None or config.validation_trim > 0):
                # a trim needs every row's loss, so under a process group every rank scores every row
                value = trimmed_mean(batched(lambda b: loss_fn(module, b), validation), config.validation_trim)
                if sync is not None:  # all-reduced, so that every rank's decisions rest on the same number
                    value = sync.all_sum([value], validation.device)[0] / sync.world_size
            elif sync is not None:
                value = _sharded_mean(sync, losses, validation, validation_labels)
            else:
                value = torch.cat([losses(validation[i : i + 4096], validation_labels[i : i + 4096])
                                   for i in range(0, len(validation), 4096)]).mean().item()
        module.train()
        return value

    def recover(reason: str) -> bool:
        """Restore the best weights with a lower learning rate; False when out of restarts."""
        nonlocal lr, optimizer
        history.restarts += 1
        module.load_state_dict(best_state)
        if history.restarts > config.max_restarts:
            logger.warning("training stopped after %d divergences (%s)", history.restarts - 1, reason)
            return False
        lr *= 0.5
        optimizer = new_optimizer(lr)
        logger.info("divergence (%s): best weights restored, learning rate now %.3g", reason, lr)
        return True

    module.train()
    batches = index_batches()
    for epoch in range(config.max_epochs):
        steps = steps_per_epoch
        if config.max_steps is not None:
            if history.steps >= config.max_steps:
                break
            steps = min(steps, config.max_steps - history.steps)
        total, count, diverged = 0.0, 0, False
        for idx in itertools.islice(batches, steps):
            batch = train[idx]
            if augment is not None:  # the whole batch on every rank: the same noise as in one process
                batch = augment(batch, None if train_extra is None else train_extra[idx], generator)
            labels = None if train_labels is None else train_labels[idx]
            if sync is None:
                loss = losses(batch, labels).mean()
                finite = bool(torch.isfinite(loss))
            else:  # this rank's rows; scaled so that DDP's gradient average is that of the batch mean
                local = parallel(sync.shard(batch), None if labels is None else sync.shard(labels)).sum()
                finite = bool(torch.isfinite(local))
                batch_sum, bad = sync.all_sum([local.item() if finite else 0.0, 0.0 if finite else 1.0], train.device)
                finite = bad == 0
                loss = local * (sync.world_size / len(idx))
            if not finite:
                diverged = True
                break
            if config.lr_schedule != "constant":  # ``lr`` is the base rate, which a recovery halves
                for group in optimizer.param_groups:
                    group["lr"] = scheduled_learning_rate(config, lr, history.steps, most_steps)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = nn.utils.clip_grad_norm_(module.parameters(), config.clip_grad_norm)
            if not torch.isfinite(grad_norm):
                diverged = True
                break
            optimizer.step()
            history.steps += 1
            report("training", history.steps, most_steps)
            total += loss.item() * len(idx) if sync is None else batch_sum
            count += len(idx)
        if diverged:  # after the recovery, training resumes on a fresh pass
            batches = index_batches()
        val = validation_loss() if not diverged else math.nan
        train_loss = total / max(count, 1) if not diverged else math.nan
        history.train_loss.append(train_loss)
        history.validation_loss.append(val)
        if callback is not None:
            callback(epoch, train_loss, val)

        best = history.best_validation_loss
        if diverged or not math.isfinite(val):
            if not recover("non-finite loss"):
                break
            continue
        if math.isfinite(best) and val > best + max(config.blowup_nats, abs(best)):
            if not recover(f"validation loss {val:.4g} vs best {best:.4g}"):
                break
            continue
        if not math.isfinite(best) or val < best - 1e-4 * max(1.0, abs(best)):
            history.best_validation_loss = val
            history.best_epoch = epoch
            best_state = copy.deepcopy(module.state_dict())
            stale = 0
        else:
            stale += 1
            if stale >= config.patience:
                history.stopped_early = True
                break

    if config.max_steps is not None and history.steps >= config.max_steps and not history.stopped_early:
        history.hit_step_budget = True
    report("training", most_steps, most_steps)
    module.load_state_dict(best_state)
    module.eval()
    return history


def warn_if_untrained(history: TrainingHistory, model: str, learning_rate: float, advice: str = "") -> bool:
    """Warn (scikit-learn's ``ConvergenceWarning``; the model is still returned, as scikit-learn's
    estimators do) when training never reached a finite validation loss, so that the module kept
    its initial weights.

    Args:
        history: What :func:`train_module` returned.
        model: What was trained, for the message (``"flow"``, ``"autoencoder"``, ...).
        learning_rate: The configured learning rate, named in the advice.
        advice: Further sentences for the user (what else to change), appended to the message.

    Returns:
        Whether it warned.
    """
    if history.best_epoch >= 0:
        return False
    warnings.warn(f"{model} training failed: the loss was not finite in any epoch ({history.restarts} divergences, "
                  f"each restarted from the initial weights at half the learning rate), so the {model} keeps its "
                  f"initial, untrained weights. Try a lower learning_rate (now {learning_rate:g}). {advice}".rstrip(),
                  ConvergenceWarning, stacklevel=3)
    return True


def _sharded_mean(sync: RankSync, losses: Callable, rows: Tensor, labels: Tensor | None, chunk: int = 4096) -> float:
    """Mean per-sample loss over ``rows`` ``(M, ...)``, each rank scoring its share; all-reduced."""
    rows = sync.shard(rows)
    labels = None if labels is None else sync.shard(labels)
    total = 0.0
    for i in range(0, len(rows), chunk):
        total += float(losses(rows[i : i + chunk], None if labels is None else labels[i : i + chunk]).double().sum())
    total, count = sync.all_sum([total, float(len(rows))], rows.device)
    return total / count if count else math.nan
