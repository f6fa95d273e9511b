"""One factory for the vector flows flowad uses, all built on zuko.

Every flow returned here is a :class:`zuko.flows.Flow`: calling it gives a distribution whose
``log_prob(x)`` is the exact log-density of ``x`` (shape ``(N, features)`` -> ``(N,)``) and whose
``transform`` maps data to the latent space (``transform(x)`` -> ``z`` of shape ``(N, features)``,
``transform.call_and_ladj(x)`` -> ``(z, log|det J|)``, ``transform.inv(z)`` -> ``x``).
"""

from __future__ import annotations

from collections.abc import Sequence

import zuko

__all__ = ["FLOW_KINDS", "build_vector_flow"]

#: Flow kinds and the zuko class behind each.
#:
#: - ``"maf"``: Masked Autoregressive Flow for Density Estimation (Papamakarios et al., 2017,
#:   arXiv:1705.07057), affine autoregressive transforms.
#: - ``"realnvp"``: Density estimation using Real NVP (Dinh et al., 2016, arXiv:1605.08803),
#:   affine coupling transforms with alternating masks.
#: - ``"nsf"``: Neural Spline Flows (Durkan et al., 2019, arXiv:1906.04032), monotonic
#:   rational-quadratic spline autoregressive transforms on ``[-5, 5]`` (identity outside).
FLOW_KINDS: dict[str, type[zuko.flows.Flow]] = {
    "maf": zuko.flows.MAF,
    "realnvp": zuko.flows.RealNVP,
    "nsf": zuko.flows.NSF,
}


def build_vector_flow(
    kind: str,
    features: int,
    transforms: int = 5,
    hidden_features: Sequence[int] = (64, 64),
    context: int = 0,
    **kwargs,
) -> zuko.flows.Flow:
    """Build an untrained vector flow.

    Parameters are initialised from torch's global generator; callers that need reproducibility
    wrap the call in ``torch.random.fork_rng()`` with a seed (see ``FlowDetector``).

    Args:
        kind: One of :data:`FLOW_KINDS` (``"maf"``, ``"realnvp"``, ``"nsf"``).
        features: Dimension ``D`` of the data; the flow models inputs of shape ``(N, D)``.
        transforms: Number of stacked transforms (depth).
        hidden_features: Widths of the hidden layers of each transform's conditioner network.
        context: Dimension of an optional conditioning vector (0 for none).
        **kwargs: Passed on to the zuko class (for example ``bins`` for ``"nsf"``).

    Returns:
        The flow, a ``torch.nn.Module``.

    Raises:
        ValueError: If ``kind`` is unknown or a size is not a positive integer.
    """
    if kind not in FLOW_KINDS:
        raise ValueError(f"kind must be one of {sorted(FLOW_KINDS)}, got {kind!r}")
    if int(features) < 1:
        raise ValueError(f"features must be a positive integer, got {features!r}")
    if int(transforms) < 1:
        raise ValueError(f"transforms must be a positive integer, got {transforms!r}")
    hidden = tuple(int(h) for h in hidden_features)
    if not hidden or min(hidden) < 1:
        raise ValueError(f"hidden_features must be positive widths, got {hidden_features!r}")
    return FLOW_KINDS[kind](
        features=int(features),
        context=int(context),
        transforms=int(transforms),
        hidden_features=hidden,
        **kwargs,
    )
