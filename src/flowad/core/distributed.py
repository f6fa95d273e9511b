"""Data-parallel training across processes with PyTorch's own engine (``torch.distributed`` + DDP).

Launch any flowad training under ``torchrun`` (``torchrun --nproc-per-node N -m flowad.train ...``)
and :func:`~flowad.core.training.train_module` becomes data-parallel by itself as soon as a
process group with more than one rank is initialised (:func:`distributed_session` does that from
torchrun's environment):

- every rank holds the same rows and draws the same epoch permutation (the same seed), then keeps
  its own share of each batch, ``batch[rank::world_size]`` (``DistributedSampler`` semantics, but per
  batch, so that the *global* batch is exactly the single-process one);
- the module is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel` (gloo on CPU, nccl
  on GPU), which averages gradients; each rank's loss is scaled so the average is the gradient of
  the global batch mean;
- training and validation losses, and the "a loss was not finite" flag, are all-reduced, so early
  stopping and the divergence guard take the same decision on every rank;
- a random seed left to chance (``random_state=None``) is drawn on rank 0 and broadcast.

Saving once (rank 0) is the caller's job; :func:`is_main_process` tells who that is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = [
    "RankSync",
    "agreed_random_state",
    "distributed_session",
    "is_main_process",
]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "gloo", "nccl")


@dataclass(frozen=True)
class RankSync:
    """This process's place in a data-parallel group, and the collectives training needs.

    Attributes:
        rank: This process's rank, ``0 <= rank < world_size``.
        world_size: Number of processes.
    """

    rank: int
    world_size: int

    @classmethod
    def current(cls) -> RankSync | None:
        """The running group, or ``None`` when no process group with two or more ranks exists."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return None
        return cls(dist.get_rank(), dist.get_world_size())

    def shard(self, rows: Tensor) -> Tensor:
        """This rank's share of ``rows`` (shape ``(B, ...)`` -> ``(~B / world_size, ...)``)."""
        return rows[self.rank :: self.world_size]

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        """Element-wise sum of ``values`` over all ranks (float64)."""
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def check_same(self, what: str, values: list[float], device: torch.device) -> None:
        """Raise ``ValueError`` on every rank when ``values`` differ between ranks (e.g. the ranks
        read different data)."""
        t = torch.tensor(values, dtype=torch.float64, device=device)
        low, high = t.clone(), t.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if not torch.allclose(low, high, rtol=1e-6, atol=0.0, equal_nan=True):
            raise ValueError(f"the {self.world_size} ranks disagree on {what}: {low.tolist()} vs {high.tolist()}; "
                             "every rank must train on the same rows")

    def wrap(self, module: nn.Module, loss_fn: Callable) -> nn.Module:
        """``module`` and its per-sample loss as one DDP module: ``wrapped(batch[, labels])`` -> ``(B,)``."""
        loss_module = _LossModule(module, loss_fn)
        device = next(module.parameters()).device
        ids = None
        if device.type == "cuda":
            ids = [device.index if device.index is not None else torch.cuda.current_device()]
        return nn.parallel.DistributedDataParallel(loss_module, device_ids=ids)


class _LossModule(nn.Module):
    """Puts the loss inside ``forward`` so DDP sees every step, whichever methods the loss calls."""

    def __init__(self, module: nn.Module, loss_fn: Callable) -> None:
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, batch: Tensor, labels: Tensor | None = None) -> Tensor:
        if labels is None:
            return self.loss_fn(self.module, batch)
        return self.loss_fn(self.module, batch, labels)


def agreed_random_state(random_state):
    """``random_state`` itself, except inside a data-parallel group when it is ``None``: then a seed
    drawn on rank 0 and broadcast, so every rank splits and shuffles the rows alike."""
    sync = RankSync.current()
    if sync is None or random_state is not None:
        return random_state
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    seed = torch.tensor([int(np.random.default_rng().integers(2**31 - 1))], dtype=torch.int64, device=device)
    dist.broadcast(seed, src=0)
    return int(seed.item())


def is_main_process() -> bool:
    """True outside a process group and on rank 0 inside one (the rank that saves and reports)."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


@contextlib.contextmanager
def distributed_session(backend: str = "auto") -> Iterator[RankSync | None]:
    """Join the process group ``torchrun`` describes in the environment, and leave it afterwards.

    Args:
        backend: ``"gloo"`` (CPU), ``"nccl"`` (GPU) or ``"auto"`` (nccl when CUDA is present).

    Yields:
        The :class:`RankSync`, or ``None`` when the process was not launched by torchrun (no
        ``WORLD_SIZE`` in the environment) or the group has one rank: training then runs as usual.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if "WORLD_SIZE" not in os.environ or "RANK" not in os.environ:
        logger.warning("not launched by torchrun (no WORLD_SIZE/RANK in the environment): training in one process")
        yield None
        return
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise ValueError("backend 'nccl' needs CUDA; use 'gloo' on CPU")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    owned = not dist.is_initialized()
    if owned:
        dist.init_process_group(backend=backend)
    try:
        sync = RankSync.current()
        if sync is not None:
            logger.info("rank %d of %d (%s)", sync.rank, sync.world_size, backend)
        yield sync
        if sync is not None:
            dist.barrier()
    finally:
        if owned:
            dist.destroy_process_group()
