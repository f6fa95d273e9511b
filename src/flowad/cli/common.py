"""What every CLI command shares: consoles, the progress bar, logging, option parsing."""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["LabelColumn", "Quiet", "csv_list", "err", "integer", "out", "progress_bar", "setup_logging"]

out = Console()
err = Console(stderr=True)

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or log messages.")]
LabelColumn = Annotated[
    str | None,
    typer.Option("--label-column", "-l", help="Column with labels, 1 = anomaly (for .npz files: y)."),
]


def setup_logging(quiet: bool) -> None:
    """Log messages at INFO, or only warnings when ``quiet``."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")


def progress_bar(quiet: bool) -> Progress:
    """A transient progress bar on standard error (hidden when ``quiet``)."""
    return Progress(
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
