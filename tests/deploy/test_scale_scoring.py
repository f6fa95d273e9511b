"""Out-of-core scoring: chunked Parquet and Dask partitions give exactly the in-memory scores."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flowad import FlowDetector, io
from flowad.cli import app
from flowad.deploy import read_scores, score_parquet, score_parquet_dask
from tests.conftest import FAST

COLUMNS = list("abc")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A saved MAF fitted on named columns, and three Parquet files (several row groups each)."""
    root = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.normal(size=(300, 3)), columns=COLUMNS)
    detector = FlowDetector("maf", random_state=0, **FAST["maf"]).fit(train)
    io.save(detector, root / "model")
    test = pd.DataFrame(rng.normal(size=(2_500, 3)) * 1.5, columns=COLUMNS)
    test["y"] = (rng.random(len(test)) < 0.1).astype(int)
    data = root / "data"
    data.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(test)), 3)):
        test.iloc[part].to_parquet(data / f"f{i}.parquet", row_group_size=300)
    return root, detector, test, detector.score_samples(test[COLUMNS])


def test_local_engine_matches_in_memory_scores(setup, tmp_path):
    root, detector, test, expected = setup
    chunks = []
    parts = score_parquet(detector, [root / "data" / "*.parquet"], tmp_path / "out", chunk_rows=128,
                          on_chunk=chunks.append)
    assert len(parts) == 3 and max(chunks) == 128 and sum(chunks) == len(test)
    scores = read_scores(tmp_path / "out")
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=1e-12, atol=1e-12)  # chunking moves rounding
    np.testing.assert_array_equal(scores["is_anomaly"].to_numpy(), detector.predict(test[COLUMNS]) == -1)
    np.testing.assert_array_equal(scores["p_value"].to_numpy(), detector.p_values(test[COLUMNS]))
    sizes = [len(p) for p in np.array_split(np.arange(len(test)), 3)]
    assert scores["row"].tolist() == [i for n in sizes for i in range(n)]  # row numbers within each input file


def test_dask_local_cluster_matches_in_memory_scores(setup, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, detector, test, expected = setup
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        parts = score_parquet_dask(root / "model", [root / "data"], tmp_path / "out",
                                   scheduler=cluster.scheduler_address)
    assert [p.name for p in parts] == ["part.00000.parquet", "part.00001.parquet", "part.00002.parquet"]
    scores = read_scores(tmp_path / "out")
    np.testing.assert_allclose(scores["score"].to_numpy(), expected, rtol=1e-12, atol=1e-12)  # chunking moves rounding
    np.testing.assert_array_equal(scores["is_anomaly"].to_numpy(), detector.predict(test[COLUMNS]) == -1)
    assert scores["row"].tolist() == list(range(len(test)))  # numbered over all inputs, in order


def test_cli_engines(setup, tmp_path):
    root, _, _, expected = setup
    runner = CliRunner()
    result = runner.invoke(app, ["score", str(root / "model"), str(root / "data" / "f0.parquet"),
                                 str(root / "data" / "f1.parquet"), str(root / "data" / "f2.parquet"),
                                 "--engine", "local", "--chunk-rows", "500", "-o", str(tmp_path / "s"), "--quiet"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(read_scores(tmp_path / "s")["score"].to_numpy(), expected, rtol=1e-12, atol=1e-12)
    # the memory engine keeps its one-file contract
    result = runner.invoke(app, ["score", str(root / "model"), str(root / "data" / "f0.parquet"),
                                 str(root / "data" / "f1.parquet")])
    assert result.exit_code != 0 and "one file" in str(result.exception)


def test_engines_refuse_bad_input(setup, tmp_path):
    root, detector, test, _ = setup
    with pytest.raises(FileNotFoundError, match="no Parquet data"):
        score_parquet(detector, [tmp_path / "missing*.parquet"], tmp_path / "o")
    test[["a", "b"]].to_parquet(tmp_path / "narrow.parquet")
    with pytest.raises(ValueError, match="feature column"):
        score_parquet(detector, [tmp_path / "narrow.parquet"], tmp_path / "o")
    test.to_csv(tmp_path / "t.csv")
    with pytest.raises(ValueError, match="Parquet files only"):
        score_parquet(detector, [tmp_path / "t.csv"], tmp_path / "o")
    with pytest.raises(ValueError, match="chunk_rows"):
        score_parquet(detector, [root / "data"], tmp_path / "o", chunk_rows=0)
    score_parquet(detector, [root / "data"], tmp_path / "o")
    with pytest.raises(ValueError, match="already holds"):  # never mixes two runs' parts
        score_parquet(detector, [root / "data"], tmp_path / "o")


def test_local_engine_memory_is_flat(tmp_path):
    """Peak traced memory while scoring 40k rows is no larger than while scoring 4k rows (chunks of 2k)."""
    import tracemalloc

    rng = np.random.default_rng(1)
    detector = FlowDetector("maf", random_state=0, **FAST["maf"]).fit(rng.normal(size=(200, 4)))
    peaks = []
    for n in (4_000, 40_000):
        path = tmp_path / f"rows{n}.parquet"
        pd.DataFrame(rng.normal(size=(n, 4)), columns=[f"x{i}" for i in range(4)]).to_parquet(
            path, row_group_size=2_000)
        tracemalloc.start()
        score_parquet(detector, [path], tmp_path / f"out{n}", chunk_rows=2_000)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0], peaks
