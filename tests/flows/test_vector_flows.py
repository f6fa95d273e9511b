"""Every vector flow: exact inverse and exact log-determinant (float64)."""

import pytest
import torch

from flowad.flows import FLOW_KINDS, FlowMixture, build_vector_flow


@pytest.mark.parametrize("kind", sorted(FLOW_KINDS))
@pytest.mark.parametrize("features", [1, 3])
def test_inverse_of_forward_is_identity(kind, features):
    torch.manual_seed(0)
    flow = build_vector_flow(kind, features, transforms=3, hidden_features=(16, 16)).double()
    transform = flow().transform
    x = torch.randn(64, features, dtype=torch.float64)
    z = transform(x)
    assert not torch.allclose(z, x)  # the flow is not the identity
    torch.testing.assert_close(transform.inv(z), x, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("kind", sorted(FLOW_KINDS))
def test_log_det_matches_autograd_jacobian(kind):
    torch.manual_seed(1)
    features = 4
    flow = build_vector_flow(kind, features, transforms=3, hidden_features=(16, 16)).double()
    transform = flow().transform
    x = torch.randn(5, features, dtype=torch.float64)
    _, ladj = transform.call_and_ladj(x)
    for i in range(len(x)):
        jac = torch.autograd.functional.jacobian(lambda row: transform(row[None])[0], x[i])
        expected = torch.linalg.slogdet(jac).logabsdet
        torch.testing.assert_close(ladj[i], expected, atol=1e-8, rtol=1e-8)


def test_log_prob_is_change_of_variables():
    torch.manual_seed(2)
    flow = build_vector_flow("maf", 3, transforms=2).double()
    dist = flow()
    x = torch.randn(10, 3, dtype=torch.float64)
    z, ladj = dist.transform.call_and_ladj(x)
    base = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    torch.testing.assert_close(dist.log_prob(x), base + ladj)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "glow", "features": 3}, "kind"),
        ({"kind": "maf", "features": 0}, "features"),
        ({"kind": "maf", "features": 3, "transforms": 0}, "transforms"),
        ({"kind": "maf", "features": 3, "hidden_features": ()}, "hidden_features"),
    ],
)
def test_factory_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_vector_flow(**kwargs)


class _Gaussian(torch.nn.Module):
    """A stand-in flow: calling it gives a unit Gaussian at ``loc`` (the calling convention of zuko)."""

    def __init__(self, loc: float) -> None:
        super().__init__()
        self.loc = torch.full((2,), loc)

    def forward(self):
        return torch.distributions.Independent(torch.distributions.Normal(self.loc, 1.0), 1)


def test_flow_mixture_density_and_draws_come_from_every_member():
    """Members at -20 and +20: half the density mass and about half the draws on each side."""
    torch.manual_seed(0)
    mixture = FlowMixture([_Gaussian(-20.0), _Gaussian(20.0)])
    x = torch.tensor([[-20.0, -20.0], [20.0, 20.0]])
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(torch.zeros(2)).sum() - torch.log(torch.tensor(2.0))
    torch.testing.assert_close(mixture().log_prob(x), expected.expand(2))
    draws = mixture().sample((2000,))
    assert draws.shape == (2000, 2)
    assert 0.45 < (draws[:, 0] < 0).float().mean().item() < 0.55
    assert ((draws[:, 0] < 0) == (draws[:, 1] < 0)).all()  # each draw comes whole from one member
    assert mixture().sample((3, 4)).shape == (3, 4, 2)
    flow = FlowMixture([build_vector_flow("maf", 2, transforms=1)])
    with pytest.raises(AttributeError, match="no single latent code"):
        _ = flow().transform
    with pytest.raises(ValueError, match="at least one flow"):
        FlowMixture([])


def test_geometric_pool_is_the_mean_log_density_and_below_the_mixture():
    """combine='geometric': (1/K) sum_k log p_k(x), never above the mixture (AM-GM), not sampled."""
    members = [_Gaussian(-1.0), _Gaussian(2.0)]
    pool, mixture = FlowMixture(members, "geometric"), FlowMixture(members)
    x = torch.tensor([[-1.0, -1.0], [0.5, 0.5], [2.0, 2.0], [9.0, -9.0]])
    expected = torch.stack([m().log_prob(x) for m in members]).mean(dim=0)
    torch.testing.assert_close(pool().log_prob(x), expected)
    assert (pool().log_prob(x) <= mixture().log_prob(x)).all()
    with pytest.raises(NotImplementedError, match="combine='mixture'"):
        pool().sample((3,))
    with pytest.raises(ValueError, match="combine"):
        FlowMixture(members, "median")
