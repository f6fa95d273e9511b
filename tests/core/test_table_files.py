"""Reading tables as users write them, and writing scores by the output's extension."""

import numpy as np
import pandas as pd
import pytest

from flowad.core.table_files import read_table, write_table


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b", "c"], "temp": [20.5, 21.25, -3.0], "n": [1, 2, 3]})


@pytest.mark.parametrize("sep, decimal", [(",", "."), (";", ","), (";", "."), ("\t", "."), ("\t", ","), ("|", ".")])
def test_separators_and_decimal_commas_are_recognised(tmp_path, frame, sep, decimal):
    path = tmp_path / "t.csv"
    frame.to_csv(path, sep=sep, decimal=decimal, index=False)
    read = read_table(path)
    assert list(read.columns) == ["id", "temp", "n"]
    np.testing.assert_allclose(read["temp"], frame["temp"])


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("a,b,c\n", "header but no rows"),
    ("a,b,a\n1,2,3\n", "duplicate column name"),
])
def test_files_that_would_mislead_are_refused(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_table(path)


def test_folders_missing_files_and_unknown_formats(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        read_table(tmp_path)
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "t.xlsx").write_text("x")
    with pytest.raises(ValueError, match="must end in one of"):
        read_table(tmp_path / "t.xlsx")


def test_npz_files_become_named_columns(tmp_path):
    np.savez(tmp_path / "d.npz", X=np.ones((4, 2)), y=np.array([0, 0, 1, 0]))
    read = read_table(tmp_path / "d.npz")
    assert list(read.columns) == ["x0", "x1", "y"] and read["y"].tolist() == [0, 0, 1, 0]


def test_output_format_follows_the_extension(tmp_path, frame):
    write_table(frame, tmp_path / "s.parquet")
    write_table(frame, tmp_path / "s.csv")
    assert (tmp_path / "s.parquet").read_bytes()[:4] == b"PAR1"
    assert (tmp_path / "s.csv").read_text().startswith("id,temp,n")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "s.parquet"), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.parquet"]  # no temporary files left
    with pytest.raises(ValueError, match="is a folder"):
        write_table(frame, tmp_path)
