"""``flowad data ...``: built-in data written as files, to try flowad on (the image and series
commands add ``textures`` and ``vehicle``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flowad.cli.common import command, say
from flowad.core.table_files import write_table
from flowad.datasets.sensor_table import sensor_table

__all__ = ["data_app"]

data_app = typer.Typer(no_args_is_help=True, help="Write built-in data sets to files and folders.")


@command(data_app, "sensors")
def sensors(
    output: Annotated[Path, typer.Argument(help="CSV or Parquet file to write (by its extension).")],
    n: Annotated[int, typer.Option("--n", min=10, help="Rows.")] = 400,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write a small sensor table as exports have them: id, timestamp, site (text), door_open
    (boolean), temp (with gaps), power, label (1 = anomaly)."""
    frame = sensor_table(n, random_state=seed)
    write_table(frame, output)
    say(f"{n} rows ({int(frame.label.sum())} anomalies, {int(frame.temp.isna().sum())} missing temperatures) "
        f"-> {output}")
