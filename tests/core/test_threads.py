"""Thread policy: fits and scores choose their own intra-op threads and restore the caller's."""

import numpy as np
import pytest
import torch

from flowad import FlowDetector
from flowad.core.threads import resolve_threads, torch_threads


@pytest.fixture
def caller_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_context_restores_the_callers_setting_even_on_error(caller_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == caller_threads
    with pytest.raises(RuntimeError, match="inside"), torch_threads(2):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == caller_threads
    with torch_threads(None):  # None leaves the setting alone
        assert torch.get_num_threads() == caller_threads
    with pytest.raises(ValueError, match="threads"), torch_threads(0):
        pass


def test_small_models_take_one_thread_large_ones_the_default():
    assert resolve_threads(None, 64) == 1
    assert resolve_threads(None, 4096) is None
    assert resolve_threads(2, 64) == 2
    with pytest.raises(ValueError, match="threads"):
        resolve_threads(0, 64)


def test_fit_and_score_run_on_their_threads_and_restore_the_callers(caller_threads, monkeypatch):
    seen = []
    original = torch.nn.Module.__call__

    def spy(module, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(module, *args, **kwargs)

    X = np.random.default_rng(0).normal(size=(200, 3))
    monkeypatch.setattr(torch.nn.Module, "__call__", spy)
    detector = FlowDetector(transforms=1, hidden_features=(8,), max_epochs=2, random_state=0).fit(X)
    assert seen and set(seen) == {1}  # one thread for a small network
    assert torch.get_num_threads() == caller_threads
    seen.clear()
    detector.set_params(threads=2).score_samples(X)
    assert seen and set(seen) == {2}
    assert torch.get_num_threads() == caller_threads
