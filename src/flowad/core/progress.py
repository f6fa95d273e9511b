"""Progress of long model steps (feature extraction, training epochs, scoring batches), reported
to whoever listens: the CLI's progress bars, or nobody (the default: reporting costs nothing).

A model calls :func:`report` as it goes; a caller that wants to see it wraps the work in
:func:`listen`. Listeners nest per thread of control (a ``ContextVar``), so a library user's own
listener is never replaced by flowad's.

Example:
    >>> seen = []
    >>> with listen(lambda task, done, total: seen.append((task, done, total))):
    ...     for i in range(3):
    ...         report("features", i + 1, 3)
    >>> seen[-1]
    ('features', 3, 3)
    >>> report("features", 1, 3)   # nobody listens: nothing happens

A model that repeats a step (one flow trained per feature stage) names each repetition with
:func:`part`, so that a listener sees ``"training (stage 1 of 3)"`` and then ``"training (stage 2 of
3)"`` rather than one ``"training"`` that starts over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Listener", "listen", "part", "report"]

#: ``listener(task, done, total)``: ``task`` names the step ("features", "training", "scoring"),
#: ``done`` of ``total`` units (images or epochs) are finished; ``total`` may be None when unknown.
Listener = Callable[[str, int, "int | None"], None]

_LISTENER: ContextVar[Listener | None] = ContextVar("flowad_progress_listener", default=None)
_PART: ContextVar[str] = ContextVar("flowad_progress_part", default="")


def report(task: str, done: int, total: int | None = None) -> None:
    """Tell the current listener (if any) that ``done`` of ``total`` units of ``task`` are finished."""
    listener = _LISTENER.get()
    if listener is not None:
        label = _PART.get()
        listener(f"{task} ({label})" if label else task, int(done), None if total is None else int(total))


@contextmanager
def part(label: str) -> Iterator[None]:
    """Report every step inside the block as ``"<task> (<label>)"``.

    Example:
        >>> seen = []
        >>> with listen(lambda task, done, total: seen.append(task)), part("stage 2 of 3"):
        ...     report("training", 1, 10)
        >>> seen
        ['training (stage 2 of 3)']
    """
    token = _PART.set(label)
    try:
        yield
    finally:
        _PART.reset(token)


@contextmanager
def listen(listener: Listener) -> Iterator[None]:
    """Send every :func:`report` inside the block to ``listener``; the previous one is restored after."""
    token = _LISTENER.set(listener)
    try:
        yield
    finally:
        _LISTENER.reset(token)
