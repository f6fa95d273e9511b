"""What every CLI command shares: the command decorator (``--quiet``, ``--threads``), consoles,
progress bars, logging and option parsing."""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from flowad.core.threads import torch_threads

__all__ = ["LabelColumn", "Quiet", "Threads", "command", "csv_list", "err", "integer", "out", "progress_bar",
           "say", "setup_logging"]

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log messages.")]
Threads = Annotated[int | None, typer.Option(
    min=1, help="PyTorch threads for this command (default: chosen for the work; 1 on a busy machine).")]
LabelColumn = Annotated[
    str | None,
    typer.Option("--label-column", "-l", help="Column with labels, 1 = anomaly (for .npz files: y)."),
]


def setup_logging(quiet: bool) -> None:
    """Log messages at INFO, or only warnings when ``quiet``."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", force=True)


def say(message: str) -> None:
    """Print one line of output as it is (no rich markup: ``[bench]`` stays ``[bench]``)."""
    out.print(message, markup=False, soft_wrap=True)


def command(app: typer.Typer, name: str | None = None, **options) -> Callable:
    """``@app.command(name)`` with ``--quiet`` and ``--threads`` on every command.

    The decorated function may take ``quiet`` and ``threads`` itself; otherwise they are added.
    Either way, logging follows ``--quiet`` and the body runs with ``--threads`` PyTorch threads
    (:func:`flowad.core.threads.torch_threads`; the caller's setting is restored afterwards).
    """
    def decorate(func: Callable) -> Callable:
        signature = inspect.signature(func, eval_str=True)
        own = set(signature.parameters)
        added = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
                 for n, d, a in (("quiet", False, Quiet), ("threads", None, Threads)) if n not in own]

        @functools.wraps(func)
        def run(*args, **kwargs):
            quiet, threads = bool(kwargs.get("quiet", False)), kwargs.get("threads")
            for parameter in added:
                kwargs.pop(parameter.name, None)
            setup_logging(quiet)
            with torch_threads(threads):
                return func(*args, **kwargs)

        run.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])
        run.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()},
                               **{p.name: p.annotation for p in added}}
        return app.command(name, **options)(run)

    return decorate


def progress_bar(quiet: bool) -> Progress:
    """A transient progress bar on standard error (hidden when ``quiet``)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )


def csv_list(text: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None for an empty option."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def integer(text: str, name: str) -> int:
    """``int(text)``, or a ValueError naming the option ``--name``."""
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--{name} must be comma-separated integers, got {text!r}") from None
