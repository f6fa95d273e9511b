"""``flowad study ...``: the reproductions of the published studies and the benchmarks on built-in
data, a plug-in of the ``flowad`` command (entry point group ``flowad.cli``).

One command per study, plus ``all`` (every study, one after another), ``image-bench`` and
``ts-bench``. Each writes its page, numbers and figures into ``--out``.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from flowad.cli.common import Quiet, command, csv_list, integer, out, progress_bar
from flowad.datasets.textures import TEXTURES
from flowad.models.registry import IMAGE_MODELS
from flowad_studies import DEFAULT_OUT, STUDIES, run_study
from flowad_studies.image_bench import ImageBenchConfig, run_image_bench
from flowad_studies.image_report import write_image_bench_report
from flowad_studies.ts_bench import TS_DATASETS, TS_METHODS, TSBenchConfig, run_ts_bench

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


@command(study_app, "image-bench")
def image_bench(
    models: Annotated[str, typer.Option(help="Comma-separated image models, each optionally as MODEL@BACKBONE "
                                             "(patchcore@efficientnet_lite2).")] = ",".join(IMAGE_MODELS),
    texture_names: Annotated[str, typer.Option(
        "--textures", help="Comma-separated textures ('' for none).")] = ",".join(TEXTURES),
    digit_sets: Annotated[str, typer.Option(help="fashion_mnist and/or mnist ('' for none).")] = "fashion_mnist",
    classes: Annotated[str, typer.Option(help="Normal classes of the digit tasks.")] = "0,1,2,3,4,5,6,7,8,9",
    max_train: Annotated[int, typer.Option(help="Training images per digit task.")] = 1000,
    max_test: Annotated[int, typer.Option(help="Test images per digit task (stratified).")] = 2000,
    threads: Annotated[int, typer.Option(help="torch threads for the run.")] = 1,
    seed: Seed = 0,
    output: Annotated[Path, typer.Option("--output", "-o", help="Results and report folder.")] = Path(
        "runs/image_bench"),
    keep_maps: Annotated[bool, typer.Option(help="Also save every texture test map (maps/*_all.npz).")] = False,
    quiet: Quiet = False,
) -> None:
    """Benchmark the image models on the texture defect set and the digit one-class tasks."""
    logging.getLogger().setLevel(logging.WARNING)
    config = ImageBenchConfig(
        models=csv_list(models) or [],
        textures=csv_list(texture_names) or [],
        digit_sets=csv_list(digit_sets) or [],
        digit_classes=[integer(c, "classes") for c in csv_list(classes) or []],
        digit_max_train=max_train,
        digit_max_test=max_test,
        torch_threads=threads,
        seed=seed,
        keep_maps=keep_maps,
    )
    with progress_bar(quiet) as progress:
        task = progress.add_task("image bench", total=None, status="")
        run_image_bench(config, output, on_job=lambda what: progress.update(task, status=what))
    md, page = write_image_bench_report(output)
    out.print(f"results: {output}/results.csv; report: {md} and {page}")


@command(study_app, "ts-bench")
def ts_bench(
    output: Annotated[Path, typer.Option("--output", "-o", help="Results and report folder.")] = Path(
        "docs/results/timeseries"),
    methods: Annotated[str, typer.Option(help="Comma-separated registry names.")] = ",".join(TS_METHODS),
    datasets: Annotated[str, typer.Option(help=f"Comma-separated: {', '.join(TS_DATASETS)}.")] = ",".join(
        TS_DATASETS),
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    window: Annotated[int, typer.Option(help="Window length for every method.")] = 16,
    stride: Annotated[int, typer.Option(help="Stride for every method.")] = 1,
    vehicle_train: Annotated[int, typer.Option(help="Points of the clean training drive.")] = 8000,
    vehicle_test: Annotated[int, typer.Option(help="Points of each faulty test drive.")] = 10_000,
    threads: Annotated[int | None, typer.Option(help="torch threads for the run.")] = None,
    quiet: Quiet = False,
) -> None:
    """Five detectors on the same windows: vehicle faults by kind, UCR #135, Yahoo, MIT-BIH; report + PNGs."""
    logging.getLogger().setLevel(logging.WARNING)
    config = TSBenchConfig(methods=csv_list(methods) or [], datasets=csv_list(datasets) or [],
                           seeds=[integer(s, "seeds") for s in csv_list(seeds) or []], window=window, stride=stride,
                           vehicle_train_points=vehicle_train, vehicle_test_points=vehicle_test,
                           torch_threads=threads)
    with progress_bar(quiet) as progress:
        task = progress.add_task("ts bench", total=None, status="")
        run_ts_bench(config, output, on_job=lambda done, total, what: progress.update(
            task, completed=done, total=total, status=what))
    out.print(f"results: {output}/results.csv; report: {output}/report.md")
