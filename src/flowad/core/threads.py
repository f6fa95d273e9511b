"""How many CPU threads PyTorch may use, set for one block of work and restored afterwards.

PyTorch's default (one intra-op thread per core) suits large matrices on an idle machine. The
matrices of tabular flows are small: extra threads gain nothing there, and when the cores are
shared with other processes they lose badly (threads that spin while waiting for each other).
flowad therefore runs its work inside :func:`torch_threads`, which never leaves the caller's
setting changed.

Example:
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["SMALL_LAYER", "resolve_threads", "torch_threads"]

#: Layers narrower than this are "small": one thread computes them as fast as several, and
#: several collapse when the cores are busy.
SMALL_LAYER = 512


def resolve_threads(threads: int | None, widest_layer: int) -> int | None:
    """The intra-op threads for a model: ``threads`` when given; otherwise 1 for small models
    (every layer narrower than :data:`SMALL_LAYER`) and ``None`` (PyTorch's own choice) for large ones.

    Example:
        >>> resolve_threads(None, 64), resolve_threads(3, 64), resolve_threads(None, 2048)
        (1, 3, None)
    """
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        return int(threads)
    return 1 if widest_layer < SMALL_LAYER else None


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run a block with ``threads`` PyTorch intra-op threads (``None``: leave the setting alone).

    Args:
        threads: A positive number of threads, or ``None``.

    Raises:
        ValueError: For a number below 1.
    """
    if threads is None:
        yield
        return
    if int(threads) < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)
