"""A results file that survives interruptions: one JSON row per finished job, appended as it ends.

A benchmark that is stopped (Ctrl-C, a killed machine) and started again skips the jobs already
in the file. A line cut off by the interruption is dropped (and logged) when the file is opened
again, before anything is appended.

Example:
    >>> import tempfile, pathlib
    >>> log = ResultsLog(pathlib.Path(tempfile.mkdtemp()) / "results.jsonl", key=("dataset", "seed"))
    >>> log.done(("cardio", 0))
    False
    >>> log.append({"dataset": "cardio", "seed": 0, "roc_auc": 0.9})
    >>> log.done(("cardio", 0)), len(log.rows())
    (True, 1)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from flowad.core.safe_files import atomic_write_text

__all__ = ["ResultsLog", "read_rows"]

logger = logging.getLogger(__name__)


def read_rows(path: str | os.PathLike) -> list[dict]:
    """The complete rows of a results file (a damaged line, from an interrupted write, is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            logger.warning("skipping a damaged line in %s (an interrupted write)", path)
    return rows


class ResultsLog:
    """Rows of finished jobs in a JSON-lines file, keyed so that a rerun skips what is done.

    Args:
        path: The ``.jsonl`` file (created with its folder).
        key: The row fields that identify a job.
    """

    def __init__(self, path: str | os.PathLike, key: Sequence[str]) -> None:
        self.path = Path(path)
        self.key = tuple(key)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        previous = read_rows(self.path)
        if previous and len(previous) != len(self.path.read_text().splitlines()):
            atomic_write_text(self.path, "".join(json.dumps(row) + "\n" for row in previous))
        self._done = {self._key(row) for row in previous}

    def _key(self, row: dict) -> tuple:
        return tuple(row.get(k) for k in self.key)

    def done(self, key: tuple) -> bool:
        """Whether the job with these key values has a row."""
        return tuple(key) in self._done

    def append(self, row: dict) -> None:
        """Add one finished job's row (flushed to disk at once)."""
        with open(self.path, "a") as sink:
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
        self._done.add(self._key(row))

    def rows(self) -> list[dict]:
        """Every row in the file."""
        return read_rows(self.path)
