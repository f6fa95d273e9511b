"""``flowad study NAME``: the reproductions of the published studies (:mod:`flowad.experiments`).

One command per study, plus ``all`` (every study, one after another). Each writes its page, numbers
and figures into ``--out`` (``docs/results/studies`` by default).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from flowad.cli.common import Quiet, command, out
from flowad.experiments import DEFAULT_OUT, STUDIES, run_study

__all__ = ["study_app"]

study_app = typer.Typer(no_args_is_help=True, help="Reproduce the published studies of flow-based anomaly detection.")

Quick = Annotated[bool, typer.Option("--quick", help="Tiny models and sets (for tests; the numbers mean nothing).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Folder for the page, numbers and figures.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Threads = Annotated[int, typer.Option("--threads", help="torch threads (the published runs use 1).")]


def _run(names: list[str], quick: bool, output: Path, seed: int, threads: int, quiet: bool) -> None:
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    for name in names:
        start = time.perf_counter()
        run_study(name, output, quick=quick, random_state=seed)
        out.print(f"{name}: {output / (name + '.md')} ({time.perf_counter() - start:.0f} s)")


def _command(name: str):
    def command(quick: Quick = False, output: Out = DEFAULT_OUT, seed: Seed = 0, threads: Threads = 1,
                quiet: Quiet = False) -> None:
        _run([name], quick, output, seed, threads, quiet)

    doc = sys.modules[STUDIES[name].__module__].__doc__ or name
    command.__doc__ = " ".join(doc.strip().split("\n\n")[0].split())  # the module's first paragraph
    return command


for _name in STUDIES:
    command(study_app, _name)(_command(_name))


@command(study_app, "all")
def run_all(quick: Quick = False, output: Out = DEFAULT_OUT, seed: Seed = 0, threads: Threads = 1,
            quiet: Quiet = False) -> None:
    """Every study, one after another."""
    _run(list(STUDIES), quick, output, seed, threads, quiet)
