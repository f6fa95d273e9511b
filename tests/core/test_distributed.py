"""Data-parallel training on 2 CPU processes (gloo on 127.0.0.1) agrees with one process."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from flowad import FlowDetector, io
from flowad.core.distributed import RankSync, agreed_random_state, distributed_session

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(n: int = 600) -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    X[:, 1] += X[:, 0] ** 2
    return X


def test_torchrun_two_processes_match_one_process(tmp_path):
    X = _rows()
    pd.DataFrame(X, columns=list("abc")).to_csv(tmp_path / "train.csv", index=False)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(torchrun), "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
               str(_free_port()), "-m", "flowad.train", str(tmp_path / "train.csv"), "-o", str(tmp_path / "ddp"),
               "--epochs", "4", "--quiet", "--backend", "gloo"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved maf model") == 1  # rank 0 only

    single = FlowDetector("maf", max_epochs=4, random_state=0).fit(pd.DataFrame(X, columns=list("abc")))
    ddp = io.load(tmp_path / "ddp")
    np.testing.assert_allclose(ddp.history_.validation_loss, single.history_.validation_loss, rtol=1e-5)
    frame = pd.DataFrame(X, columns=list("abc"))
    np.testing.assert_allclose(ddp.score_samples(frame), single.score_samples(frame), rtol=1e-5, atol=1e-5)
    assert ddp.offset_ == pytest.approx(single.offset_, rel=1e-5)


def _worker(rank: int, port: int, folder: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    X = _rows(300)
    report = {}
    with distributed_session("gloo") as sync:
        report["sync"] = [sync.rank, sync.world_size]
        report["seed"] = agreed_random_state(None)  # drawn on rank 0, the same everywhere
        # divergence on purpose: a huge learning rate; the guard must decide alike on both ranks
        wild = FlowDetector("maf", transforms=2, hidden_features=(16, 16), max_epochs=6, learning_rate=50.0,
                            random_state=None).fit(X)
        report["restarts"] = wild.history_.restarts
        report["validation"] = [None if not np.isfinite(v) else v for v in wild.history_.validation_loss]
        report["finite"] = bool(np.isfinite(wild.score_samples(X)).all())
        try:  # ranks holding different rows are refused on every rank, not left hanging
            FlowDetector("maf", transforms=2, hidden_features=(16, 16), max_epochs=2,
                         random_state=0).fit(X[: len(X) - 10 * rank])
            report["mismatch"] = "accepted"
        except ValueError as error:
            report["mismatch"] = str(error)
    Path(folder, f"rank{rank}.json").write_text(json.dumps(report))


def test_guard_and_checks_agree_across_ranks(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["sync"] == [0, 2] and r1["sync"] == [1, 2]
    assert r0["seed"] == r1["seed"]
    assert r0["restarts"] == r1["restarts"] and r0["validation"] == r1["validation"]
    assert r0["finite"] and r1["finite"]
    assert "ranks disagree" in r0["mismatch"] and "ranks disagree" in r1["mismatch"]


def test_outside_torchrun_training_runs_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with distributed_session("gloo") as sync:
        assert sync is None and RankSync.current() is None
    with pytest.raises(ValueError, match="backend"):
        with distributed_session("mpi"):
            pass
