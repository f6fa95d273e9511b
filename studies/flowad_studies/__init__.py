"""Reproductions of the published studies behind flow-based anomaly detection, and their remedies.

Each study is a function ``run_<name>(out_dir, quick=False, random_state=0)`` that trains flowad's
own models, writes ``<name>.md`` (the published claim, the numbers, whether it reproduced), a JSON
file of the numbers and its PNG figures into ``out_dir`` (``docs/results/studies/`` by default), and
returns the numbers. ``quick=True`` runs tiny models for tests; its numbers mean nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flowad.models.glow_density.estimator import GlowConfig, GlowDensity
from flowad_studies.background import run_background
from flowad_studies.contamination import run_contamination
from flowad_studies.frequency import run_frequency
from flowad_studies.ood import run_ood
from flowad_studies.small_defects import run_small_defects
from flowad_studies.temporal import run_temporal

__all__ = ["DEFAULT_OUT", "STUDIES", "GlowConfig", "GlowDensity", "run_study"]

#: Where the studies write by default (relative to the working directory: the repository root).
DEFAULT_OUT = Path("docs/results/studies")

#: Study name -> its function, in the order of issue 9.
STUDIES: dict[str, Callable[..., dict]] = {
    "contamination": run_contamination,
    "small_defects": run_small_defects,
    "frequency": run_frequency,
    "background": run_background,
    "ood": run_ood,
    "temporal": run_temporal,
}


def run_study(name: str, out_dir: str | Path = DEFAULT_OUT, quick: bool = False, random_state: int = 0) -> dict:
    """Run the study ``name`` (a key of :data:`STUDIES`) and return its numbers."""
    if name not in STUDIES:
        raise ValueError(f"name must be one of {list(STUDIES)}, got {name!r}")
    return STUDIES[name](out_dir=out_dir, quick=quick, random_state=random_state)
