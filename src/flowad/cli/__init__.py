"""The ``flowad`` command line. Every command only calls the library API."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable
from rich.text import Text

from flowad._version import __version__
from flowad.cli.common import Quiet, command, csv_list, err, integer, out, progress_bar, say
from flowad.cli.data import data_app
from flowad.cli.iact import iact_app
from flowad.cli.images import image_app
from flowad.cli.scale import export
from flowad.cli.synth import synth_app
from flowad.cli.tables import register as register_table_commands
from flowad.cli.timeseries import ts_app
from flowad.evaluation import run_demo
from flowad.evaluation.bench import BenchConfig, run_bench
from flowad.evaluation.report import write_report
from flowad.models import available_detectors, available_peers

__all__ = ["app", "main"]

logger = logging.getLogger("flowad.cli")

try:  # typer 0.2x parses with its own copy of click; earlier versions with click itself
    from typer.exceptions import TyperException as _USAGE_ERRORS
except ImportError:  # pragma: no cover
    from click import ClickException as _USAGE_ERRORS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="flowad: anomaly and rare-event detection with normalizing flows.",
)
app.add_typer(image_app, name="image")
app.add_typer(data_app, name="data")
app.add_typer(iact_app, name="iact")
app.add_typer(synth_app, name="synth")
app.add_typer(ts_app, name="ts")


def _add_plugins(target: typer.Typer) -> None:
    """Command groups that other packages add under the entry-point group ``flowad.cli`` (the
    study reproductions register ``flowad study``); one that fails to import is left out."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="flowad.cli"):
        try:
            target.add_typer(entry.load(), name=entry.name)
        except ImportError as error:  # a plug-in whose dependencies are missing
            logger.debug("flowad plug-in %s not loaded: %s", entry.name, error)


_add_plugins(app)


register_table_commands(app)


@command(app, "demo")
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Report folder.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Compare every detector on scikit-learn's breast-cancer set and write a small report."""
    logging.getLogger().setLevel(logging.WARNING)
    names = available_detectors()
    with progress_bar(quiet) as progress:
        task = progress.add_task("demo", total=len(names), status="")

        def advance(name: str) -> None:
            done = names.index(name)
            progress.update(task, completed=done, status=f"fitting {name}")

        table = run_demo(output, random_state=seed, on_detector=advance)
        progress.update(task, completed=len(names))
    view = RichTable(title="Breast cancer (benign = normal, malignant = anomaly), one-class split")
    for column in table.columns:
        view.add_column(column, justify="left" if column == "detector" else "right")
    for row in table.itertuples(index=False):
        view.add_row(*(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))
    out.print(view)
    out.print(f"report written to {output}/ (metrics.md, metrics.csv, roc.png, histograms.png)")


@command(app, "bench")
def bench(
    suite: Annotated[list[str], typer.Option(
        help="Folder of ADBench .npz files, an ADBench suite name (classical, mvtec_resnet18) or 'builtin'. "
             "Repeatable.")] = ["classical"],  # noqa: B006 - typer needs a list default
    datasets: Annotated[str | None, typer.Option(help="Comma-separated data set names to keep.")] = None,
    detectors: Annotated[str | None, typer.Option(
        help="Comma-separated registry names (default: flowad's detectors plus the PyOD peers installed).")] = None,
    protocols: Annotated[str, typer.Option(help="oneclass and/or unsupervised, comma-separated.")] = "oneclass",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    max_rows: Annotated[int, typer.Option(help="Subsample larger sets to this many rows (0: keep all).")] = 20_000,
    roc_datasets: Annotated[str | None, typer.Option(help="Sets whose ROC curves go into the report.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="torch threads for the run.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results and report folder.")] = Path("runs/bench"),
    quiet: Quiet = False,
) -> None:
    """Benchmark detectors on data-set suites; resumes an interrupted run in the same folder."""
    logging.getLogger().setLevel(logging.WARNING)
    config = BenchConfig(
        suites=suite,
        datasets=csv_list(datasets),
        detectors=csv_list(detectors) or available_detectors() + available_peers(),
        protocols=csv_list(protocols),
        seeds=[integer(s, "seeds") for s in csv_list(seeds) or []],
        max_rows=max_rows or None,
        roc_datasets=csv_list(roc_datasets) or [],
        torch_threads=threads,
    )
    with progress_bar(quiet) as progress:
        task = progress.add_task("bench", total=None, status="")
        run_bench(config, output, on_job=lambda done, total, what: progress.update(
            task, completed=done, total=total, status=what))
    md, page = write_report(output)
    out.print(f"results: {output}/results.csv; report: {md} and {page}")


command(app, "export")(export)


@command(app, "version")
def version() -> None:
    """Print the flowad version."""
    say(__version__)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def main() -> None:
    """Entry point: runs the app; user errors (bad options and missing extras included) print one
    line and exit with status 1, without a traceback. A bare command group prints its help."""
    warnings.showwarning = _one_line_warning
    try:
        code = app(prog_name="flowad", standalone_mode=False)
    except _USAGE_ERRORS as error:  # a bad option value, an unknown option, a missing argument
        if type(error).__name__ == "NoArgsIsHelpError":  # a bare command group: its help
            error.show()
            sys.exit(error.exit_code)
        context = getattr(error, "ctx", None)
        _error_line(error.format_message().rstrip(".") + (f"; see '{context.command_path} --help'" if context else ""))
    except typer.Abort:
        _error_line("aborted")
    except (ValueError, TypeError, FileNotFoundError, OSError, ImportError) as error:
        _error_line(str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__)
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:  # typer.Exit(code) in a command
        sys.exit(code)


def _error_line(message: str) -> None:
    """Print ``error: message`` as one line on stderr and exit with status 1."""
    err.print(Text("error: ", style="bold red") + Text(" ".join(message.split())), soft_wrap=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
