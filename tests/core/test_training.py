"""The training loop's step budget, learning-rate schedule, epochs of bounded rows and capped
validation rows."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from flowad import FlowDetector
from flowad.core.training import TrainingConfig, scheduled_learning_rate, train_module
from flowad.models.tabular_flow.options import (
    COSINE_PEAK_FACTOR,
    MAX_AUTO_BATCH,
    ROW_BUDGET,
    FlowOptions,
    auto_batch_size,
)


class Recorder(nn.Module):
    """A one-parameter model whose loss records every batch it sees (training and validation)."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1))
        self.train_batches, self.validation_batches = [], []

    def losses(self, module, batch):
        (self.train_batches if module.training else self.validation_batches).append(batch[:, 0].clone())
        return (batch[:, 1:] - self.shift).pow(2).sum(1)


def rows(n: int) -> torch.Tensor:
    noise = torch.randn(n, generator=torch.Generator().manual_seed(n))
    return torch.column_stack([torch.arange(n, dtype=torch.float32), noise])


def test_the_step_budget_ends_training_and_is_recorded():
    model = Recorder()
    config = TrainingConfig(max_epochs=100, batch_size=10, patience=1000, max_steps=25)
    history = train_module(model, model.losses, rows(100), rows(20), config, torch.Generator().manual_seed(0))
    assert history.steps == 25 == len(model.train_batches)
    assert history.hit_step_budget and not history.stopped_early
    assert len(history.train_loss) == 3  # 10 + 10 + 5 steps
    assert history.batch_size == 10


class Climber(nn.Module):
    """A linear loss, ``-shift``: Adam's every step then moves ``shift`` by its learning rate."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(1))
        self.seen: list[float] = []

    def losses(self, module, batch):
        if module.training:
            self.seen.append(self.shift.item())
        return -self.shift.expand(len(batch))


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_each_step_moves_by_its_scheduled_learning_rate(schedule):
    model = Climber()
    config = TrainingConfig(max_epochs=100, batch_size=10, patience=1000, max_steps=40, weight_decay=0.0,
                            learning_rate=0.1, lr_schedule=schedule, final_lr_fraction=0.05)
    train_module(model, model.losses, rows(100), rows(20), config, torch.Generator().manual_seed(0))
    moves = np.diff(model.seen)  # the step from each batch to the next: 39 of the 40
    expected = [scheduled_learning_rate(config, 0.1, step, 40) for step in range(39)]
    np.testing.assert_allclose(moves, expected, rtol=1e-3)
    if schedule == "cosine":
        assert moves[0] > 0.099 and moves[-1] < 0.006  # from the full rate down to 5% of it
    else:
        np.testing.assert_allclose(moves, 0.1, rtol=1e-3)


def test_a_recovery_halves_the_scheduled_rate():
    """After a divergence the schedule goes on from the halved base rate, not from the original one."""
    config = TrainingConfig(lr_schedule="cosine", final_lr_fraction=0.0)
    assert scheduled_learning_rate(config, 0.5, 50, 100) == pytest.approx(0.25)
    assert scheduled_learning_rate(config, 0.5, 150, 100) == 0.0  # past the horizon: the floor
    with pytest.raises(ValueError, match="lr_schedule"):
        train_module(Climber(), Climber().losses, rows(10), rows(5), TrainingConfig(lr_schedule="linear"),
                     torch.Generator().manual_seed(0))


def test_long_tables_train_in_epochs_of_bounded_rows_that_continue_the_pass():
    model = Recorder()
    config = TrainingConfig(max_epochs=4, batch_size=100, patience=1000, epoch_rows=300)
    history = train_module(model, model.losses, rows(1000), rows(50), config, torch.Generator().manual_seed(0))
    assert len(history.train_loss) == 4 and history.steps == 12  # 3 steps per epoch
    first_pass = torch.cat(model.train_batches[:10])
    assert sorted(first_pass.long().tolist()) == list(range(1000))  # every row once before any repeats
    assert len(model.validation_batches) == 4


def test_validation_is_a_fixed_subset_when_capped():
    model = Recorder()
    config = TrainingConfig(max_epochs=3, batch_size=50, patience=1000, max_validation_rows=64)
    train_module(model, model.losses, rows(200), rows(5000), config, torch.Generator().manual_seed(0))
    seen = [b.long().tolist() for b in model.validation_batches]
    assert all(len(s) == 64 for s in seen) and seen[0] == seen[1] == seen[2]
    assert len(set(seen[0])) == 64 and max(seen[0]) > 1000  # drawn across the rows, not the first 64


def test_automatic_schedule_grows_with_the_rows():
    assert auto_batch_size(10_000) == 256 and auto_batch_size(100_000) == auto_batch_size(10**7) == MAX_AUTO_BATCH
    small, large = (FlowOptions().training_config(200, 1e-3, n) for n in (10_000, 1_000_000))
    assert small.batch_size == 256 and small.learning_rate == 1e-3
    assert large.batch_size == 2048 and math.isclose(large.learning_rate, 1e-3 * math.sqrt(8) * COSINE_PEAK_FACTOR)
    assert large.max_steps == math.ceil(ROW_BUDGET / 2048)
    assert (small.lr_schedule, large.lr_schedule) == ("constant", "cosine")  # decay where the budget ends training
    constant = FlowOptions(lr_schedule="constant").training_config(200, 1e-3, 1_000_000)
    assert constant.lr_schedule == "constant" and math.isclose(constant.learning_rate, 1e-3 * math.sqrt(8))
    fixed = FlowOptions(batch_size=512, max_steps=None).training_config(200, 1e-3, 1_000_000)
    assert (fixed.batch_size, fixed.learning_rate, fixed.max_steps) == (512, 1e-3, None)
    with pytest.raises(ValueError, match="max_steps"):
        FlowOptions(max_steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        FlowOptions(batch_size="big")
    with pytest.raises(ValueError, match="lr_schedule"):
        FlowOptions(lr_schedule="step")


def test_a_million_row_fit_stays_within_the_step_budget():
    X = np.random.default_rng(0).normal(size=(1_000_000, 2))
    detector = FlowDetector(transforms=1, hidden_features=(8,), random_state=0).fit(X)
    history = detector.history_
    assert history.batch_size == 2048
    assert 0 < history.steps <= math.ceil(ROW_BUDGET / 2048)
    assert history.hit_step_budget or history.stopped_early
    assert np.isfinite(detector.score_samples(X[:10])).all()


def test_a_table_larger_than_the_budget_can_show_is_fitted_on_a_random_subset(monkeypatch):
    from flowad.models.tabular_flow import options

    monkeypatch.setattr(options, "ROW_BUDGET", 9_000)  # the cap: 9,000 training rows plus the validation share
    monkeypatch.setattr(options, "LARGE_TABLE_ROWS", 1_000)
    cap = options.fit_rows_cap(FlowOptions())
    assert cap == 10_000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30_000, 2))
    detector = FlowDetector(transforms=1, hidden_features=(8,), random_state=0).fit(X)
    assert detector.n_rows_fitted_ == cap  # of the 27,000 left after the calibration split
    assert detector.history_.steps <= math.ceil(9_000 / MAX_AUTO_BATCH)
    unbudgeted = FlowDetector(transforms=1, hidden_features=(8,), max_epochs=1, random_state=0,
                              options=FlowOptions(max_steps=None)).fit(X)
    assert unbudgeted.n_rows_fitted_ == 27_000  # no budget, no cap
    small = FlowDetector(transforms=1, hidden_features=(8,), max_epochs=1, random_state=0).fit(X[:5_000])
    assert small.n_rows_fitted_ == 5_000  # cross-fitted: the final fit sees every row
