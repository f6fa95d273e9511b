"""Image flows (Glow layers, Glow, FastFlow's 2D flow): exact inverse and exact log-determinant
against the autograd Jacobian, in float64, on 4-D tensors."""

import pytest
import torch

from flowad.flows import (
    ActNorm2d,
    AffineCoupling2d,
    ChannelPermutation,
    FastFlow2d,
    Glow,
    InvConv2dLU,
    Squeeze2d,
)


def randomized(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random parameters everywhere (couplings start as the identity, which would test nothing)."""
    generator = torch.Generator().manual_seed(seed)
    module = module.double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return module.eval()


LAYERS = {
    "actnorm": lambda: ActNorm2d(4),
    "invconv": lambda: InvConv2dLU(4, torch.Generator().manual_seed(0)),
    "coupling3x3": lambda: AffineCoupling2d(4, 8, kernel_size=3),
    "coupling1x1": lambda: AffineCoupling2d(5, 8, kernel_size=1),
    "permutation": lambda: ChannelPermutation(4, torch.Generator().manual_seed(0)),
    "squeeze": lambda: Squeeze2d(),
    "fastflow": lambda: FastFlow2d(4, steps=4, hidden_ratio=1.0),
}


def channels_of(name):
    return 5 if name == "coupling1x1" else 4


def jacobian_logdet(fn, x):
    """log|det J| of ``fn`` at one sample ``x`` (C, H, W), by autograd."""
    jac = torch.autograd.functional.jacobian(lambda v: fn(v.reshape(1, *x.shape)).flatten(), x.flatten())
    return torch.linalg.slogdet(jac).logabsdet


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_inverse_and_logdet(name):
    layer = randomized(LAYERS[name]())
    x = torch.randn(3, channels_of(name), 4, 4, dtype=torch.float64)
    y, ladj = layer(x)
    assert ladj.shape == (3,)
    torch.testing.assert_close(layer.inverse(y), x, atol=1e-9, rtol=1e-9)
    for i in range(len(x)):
        expected = jacobian_logdet(lambda v: layer(v)[0], x[i])
        torch.testing.assert_close(ladj[i], expected, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("name", ["actnorm", "invconv", "coupling3x3", "coupling1x1", "permutation", "fastflow"])
def test_per_position_logdet_adds_up(name):
    layer = randomized(LAYERS[name]())
    x = torch.randn(2, channels_of(name), 3, 5, dtype=torch.float64)
    _, ladj = layer(x)
    _, ladj_map = layer.forward_map(x)
    assert ladj_map.shape == (2, 3, 5)
    torch.testing.assert_close(ladj_map.flatten(1).sum(1), ladj)


def test_squeeze_has_no_per_position_logdet():
    with pytest.raises(NotImplementedError, match="positions"):
        Squeeze2d().forward_map(torch.zeros(1, 1, 2, 2))


def test_actnorm_initialises_from_first_training_batch():
    layer = ActNorm2d(3).train()
    x = 5 + 2 * torch.randn(64, 3, 4, 4)
    y, _ = layer(x)
    torch.testing.assert_close(y.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-4, rtol=0)
    before = layer.bias.clone()
    layer(torch.randn(8, 3, 4, 4))  # later batches do not re-initialise
    torch.testing.assert_close(layer.bias, before)


@pytest.mark.parametrize("in_channels, levels", [(1, 2), (3, 1)])
def test_glow_inverse_and_logdet(in_channels, levels):
    glow = randomized(Glow(in_channels, levels=levels, steps=2, hidden_channels=8))
    x = torch.randn(2, in_channels, 4, 4, dtype=torch.float64)
    z, ladj = glow(x)
    assert z.shape == (2, in_channels * 16)
    torch.testing.assert_close(glow.inverse(z, (in_channels, 4, 4)), x, atol=1e-8, rtol=1e-8)
    for i in range(len(x)):
        torch.testing.assert_close(ladj[i], jacobian_logdet(lambda v: glow(v)[0], x[i]), atol=1e-8, rtol=1e-8)


def test_glow_log_prob_is_change_of_variables_and_samples_invert():
    glow = randomized(Glow(1, levels=2, steps=2, hidden_channels=8), seed=3)
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    z, ladj = glow(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    torch.testing.assert_close(glow.log_prob(x), base + ladj)
    samples = glow.sample(3, (1, 8, 8), temperature=0.7, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 1, 8, 8) and torch.isfinite(samples).all()


def test_fastflow_map_sums_to_log_prob():
    flow = randomized(FastFlow2d(6, steps=4))
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64)
    log_map = flow.log_prob_map(x)
    assert log_map.shape == (2, 5, 7)
    z, ladj = flow(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1)
    torch.testing.assert_close(log_map.flatten(1).sum(1), base + ladj)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Glow(0), "in_channels"),
        (lambda: Glow(1, levels=0), "levels"),
        (lambda: FastFlow2d(4, steps=0), "steps"),
        (lambda: FastFlow2d(4, hidden_ratio=0), "hidden_ratio"),
        (lambda: AffineCoupling2d(1, 4), "channels"),
    ],
)
def test_image_flows_reject_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_glow_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match="divisible"):
        Glow(1, levels=2, steps=1)(torch.zeros(1, 1, 6, 6))
