"""PatchCore: coreset, nearest neighbours, reweighting, bounded memory, maps that find defects."""

import numpy as np
import pytest
import torch

from flowad.models import PatchCoreDetector
from flowad.models.patchcore.torch_model import greedy_coreset, local_patches, nearest_in_bank
from tests.backbones.tiny import TinyBackbone


def _stripes(n, rng, size=32):
    """Normal images: horizontal stripes with noise; (n, size, size, 3) float32."""
    rows = (np.sin(np.arange(size) / 2.0)[None, :, None, None] + 1) / 2
    return np.clip(rows * np.ones((n, size, size, 3)) * 0.8 + rng.normal(0, 0.03, (n, size, size, 3)), 0, 1).astype(
        np.float32).transpose(0, 1, 2, 3)


def test_greedy_coreset_is_the_farthest_point_sequence():
    x = torch.randn(300, 5, generator=torch.Generator().manual_seed(0))
    chosen = greedy_coreset(x, 12, seed=3).tolist()
    expected, gaps = [chosen[0]], ((x - x[chosen[0]]) ** 2).sum(1)
    for _ in range(11):
        expected.append(int(gaps.argmax()))
        gaps = torch.minimum(gaps, ((x - x[expected[-1]]) ** 2).sum(1))
    assert chosen == expected and len(set(chosen)) == 12
    assert len(greedy_coreset(x, 1000)) == 300  # never more than the rows
    projected = greedy_coreset(torch.randn(200, 300), 10, projection_dim=16)
    assert len(set(projected.tolist())) == 10


def test_nearest_in_bank_matches_cdist_in_chunks():
    g = torch.Generator().manual_seed(1)
    queries, bank = torch.randn(50, 7, generator=g), torch.randn(40, 7, generator=g)
    distances, index = nearest_in_bank(queries, bank, k=3, chunk=8)
    full = torch.cdist(queries, bank)
    expected, expected_index = full.topk(3, largest=False)
    torch.testing.assert_close(distances, expected, atol=1e-4, rtol=1e-4)
    assert (index == expected_index).all()


@pytest.mark.parametrize("chunk", [None, 7])
def test_patch_distances_are_the_nearest_bank_distances_whole_or_in_chunks(chunk):
    rng = np.random.default_rng(1)
    detector = PatchCoreDetector(backbone=TinyBackbone(), input_size=None, reflect_margin=0, max_bank=60,
                                 max_patches=500).fit(_stripes(10, rng))
    graph = detector._graph().eval()
    if chunk:
        graph.chunk = chunk  # forces the bounded-memory path
    x = torch.from_numpy(_stripes(2, rng, size=16).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        distances, nearest, patches = graph.patch_distances(x)
    flat = patches.reshape(-1, patches.shape[-1])
    expected, expected_index = torch.cdist(flat, graph.bank).min(dim=1)
    torch.testing.assert_close(distances.reshape(-1), expected, atol=1e-4, rtol=1e-4)
    assert (nearest.reshape(-1) == expected_index).all()


def test_local_patches_average_neighbourhoods_and_align_stages():
    maps = [torch.arange(16.0).reshape(1, 1, 4, 4), torch.ones(1, 2, 2, 2)]
    patches = local_patches(maps)
    assert tuple(patches.shape) == (1, 3, 4, 4)
    assert patches[0, 0, 1, 1] == torch.tensor([0, 1, 2, 4, 5, 6, 8, 9, 10.0]).mean()
    assert patches[0, 0, 0, 0] == torch.tensor([0, 1, 4, 5.0]).mean()  # borders average what is there


def test_fit_bounds_the_bank_and_the_candidates_and_finds_a_defect():
    rng = np.random.default_rng(0)
    train = _stripes(40, rng)
    detector = PatchCoreDetector(backbone=TinyBackbone(), input_size=None, reflect_margin=8, coreset_ratio=0.25,
                                 max_bank=200, max_patches=1000, smooth_sigma=1.0, contamination=0.2).fit(train)
    assert detector.n_candidates_ <= 1000 and len(detector.memory_bank_) == 200
    assert detector.memory_bank_.shape[1] == 8 + 16 and detector.bank_neighbours_.shape == (200, 9)
    assert (detector.bank_neighbours_[:, 0] == torch.arange(200)).all()  # each bank feature is its own nearest
    test = _stripes(4, rng)
    test[2:, 8:16, 8:16] = [1.0, 0.0, 0.0]  # a red square
    maps = detector.anomaly_map(test)
    assert maps.shape == (4, 32, 32)
    assert maps[2:, 8:16, 8:16].mean() > 2 * maps[2:, 24:, 24:].mean()
    scores = detector.score_samples(test)
    assert scores[2:].max() < scores[:2].min()
    assert detector.predict(test)[2:].tolist() == [-1, -1]


def test_reweighting_scales_the_largest_distance_by_a_weight_in_0_1():
    rng = np.random.default_rng(0)
    train, test = _stripes(20, rng), _stripes(3, rng)
    kwargs = {"backbone": TinyBackbone(), "input_size": None, "reflect_margin": 8, "smooth_sigma": 0.0,
              "max_patches": 2000}
    plain = PatchCoreDetector(image_score="max", **kwargs).fit(train)
    weighted = PatchCoreDetector(**kwargs).fit(train)
    raw = -plain.score_samples(test)
    reweighted = -weighted.score_samples(test)
    assert np.all(reweighted <= raw + 1e-6) and np.all(reweighted >= 0)


@pytest.mark.parametrize(("param", "value"), [("coreset_ratio", 0.0), ("coreset_ratio", 1.5), ("max_bank", 0),
                                              ("image_score", "mean"), ("reflect_margin", 3), ("stages", "s4"),
                                              ("input_size", 4)])
def test_bad_parameters_are_named(param, value):
    images = _stripes(12, np.random.default_rng(0))
    with pytest.raises(ValueError, match=param):
        params = {"backbone": TinyBackbone(), "input_size": None, "reflect_margin": 8, param: value}
        PatchCoreDetector(**params).fit(images)


def test_feature_extraction_and_scoring_report_progress_per_batch():
    from flowad.core.progress import listen

    seen = []
    images = _stripes(20, np.random.default_rng(0))
    with listen(lambda task, done, total: seen.append((task, done, total))):
        detector = PatchCoreDetector(backbone=TinyBackbone(), input_size=None, reflect_margin=8,
                                     batch_size=4).fit(images)
        detector.score_samples(images[:6])
    features = [s for s in seen if s[0] == "features"]
    assert [d for _, d, _ in features] == [4, 8, 12, 16, 18] and features[-1][2] == 18  # 2 held out for the threshold
    assert ("scoring", 6, 6) in seen and ("scoring", 4, 6) in seen
