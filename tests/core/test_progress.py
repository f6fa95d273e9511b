"""Progress reports: the training loop's steps and the image models' scoring loops reach a listener."""

import numpy as np
import torch
from torch import nn

from flowad.core.progress import listen
from flowad.core.training import TrainingConfig, train_module
from flowad.models import ConvAutoencoderDetector, FastFlowDetector, PatchFlowDetector
from tests.backbones.tiny import TinyBackbone


def _train(config: TrainingConfig, seen: list) -> int:
    module = nn.Linear(2, 2)
    rows = torch.randn(40, 2, generator=torch.Generator().manual_seed(0))
    with listen(lambda task, done, total: seen.append((task, done, total))):
        history = train_module(module, lambda m, b: (m(b) - b).pow(2).sum(1), rows[:30], rows[30:], config,
                               torch.Generator().manual_seed(0))
    return history.steps


def test_training_reports_every_step_of_an_upper_bound_and_completes_when_it_stops_early():
    seen = []
    steps = _train(TrainingConfig(max_epochs=50, batch_size=10, patience=1, learning_rate=1e-6), seen)
    assert {task for task, _, _ in seen} == {"training"}
    assert {total for _, _, total in seen} == {50 * 3}  # 3 batches of 10 rows per epoch
    done = [d for _, d, _ in seen]
    assert done[0] == 0 and done[1 : steps + 1] == list(range(1, steps + 1))
    assert steps < 150 and seen[-1] == ("training", 150, 150)  # stopped early, the bar still completes


def test_the_step_budget_bounds_the_total():
    seen = []
    _train(TrainingConfig(max_epochs=50, batch_size=10, patience=1000, max_steps=7), seen)
    assert {total for _, _, total in seen} == {7} and seen[-1] == ("training", 7, 7)


def test_image_models_report_scoring_per_image():
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 255, (12, 16, 16), np.uint8), rng.integers(0, 255, (5, 16, 16), np.uint8)
    for detector in (ConvAutoencoderDetector(base_channels=4, max_epochs=1),
                     PatchFlowDetector(patch_size=8, stride=8, levels=1, steps=1, hidden_channels=4, max_patches=50,
                                       max_epochs=1)):
        detector.fit(train)
        seen = []
        with listen(lambda task, done, total, seen=seen: seen.append((task, done, total))):
            detector.score_and_map(test)
        assert seen[0] == ("scoring", 0, 5) and seen[-1] == ("scoring", 5, 5)
        assert [d for _, d, _ in seen] == sorted(d for _, d, _ in seen)


def test_fastflow_reports_one_training_bar_per_stage():
    images = np.random.default_rng(0).random((12, 32, 32, 3)).astype(np.float32)
    detector = FastFlowDetector(backbone=TinyBackbone(0), input_size=None, reflect_margin=8, steps=1, max_epochs=1,
                                batch_size=8, random_state=0)
    seen = []
    with listen(lambda task, done, total: seen.append(task)):
        detector.fit(images)
    training = list(dict.fromkeys(t for t in seen if t.startswith("training")))
    assert training == ["training (stage 1 of 2)", "training (stage 2 of 2)"]
