"""Atomic writes and input protection."""

import os

import pytest

from flowad.core import safe_files
from flowad.core.safe_files import atomic_path, atomic_write_bytes, check_not_inputs


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half of the new")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


def test_written_files_follow_the_umask(tmp_path):
    previous = os.umask(0o027)
    try:
        path = atomic_write_bytes(tmp_path / "a.bin", b"x")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o640


def test_outputs_that_name_an_input_are_refused(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a\n1\n")
    link = tmp_path / "link.csv"
    link.symlink_to(data)
    for output in (data, link, tmp_path / "." / "data.csv"):
        with pytest.raises(ValueError, match="is one of the inputs"):
            check_not_inputs(output, [data])
    check_not_inputs(tmp_path / "scores.csv", [data])  # a new file is fine


def test_replace_is_the_last_step(tmp_path, monkeypatch):
    target = tmp_path / "t.txt"
    target.write_text("old")

    def failing_replace(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(safe_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="simulated"):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1
