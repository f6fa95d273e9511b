"""Figure grid of the synthetic anomalies: normal patches, temperature samples at 1.0 / 1.5 / 2.0,
boundary vs far rejection samples, and normal crops with pasted samples and their masks.

Usage: python benchmarks/synth_figure.py --texture brick --out docs/results/synth/samples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from flowad.datasets.textures import make_texture_set  # noqa: E402
from flowad.synth import PatchSampler, random_patches, synthetic_anomalies  # noqa: E402

N = 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texture", default="brick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/results/synth/samples.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, _ = make_texture_set(args.texture, random_state=args.seed)
    sampler = PatchSampler(random_state=args.seed).fit(train.images)
    rng = np.random.default_rng(args.seed)
    rows: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    normal = random_patches(train.images, N, sampler.patch_size, sampler.region_size, rng)
    rows.append(("normal patches", normal, sampler.log_likelihood(normal)))
    for t in (1.0, 1.5, 2.0):
        patches, ll = sampler.sample(N, "temperature", temperature=t, random_state=args.seed)
        rows.append((f"temperature {t}", patches, ll))
    for band in ("boundary", "far"):
        patches, ll = sampler.sample(N, "rejection", band=band, random_state=args.seed)
        rows.append((f"rejection: {band}", patches, ll))
    pasted = synthetic_anomalies(train.images, sampler, N, "temperature", rng=args.seed, temperature=1.5)

    fig, axes = plt.subplots(len(rows) + 2, N, figsize=(1.3 * N, 1.35 * (len(rows) + 2)))
    for r, (title, patches, ll) in enumerate(rows):
        for c in range(N):
            ax = axes[r, c]
            ax.imshow(patches[c], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(f"{ll[c]:.0f}", fontsize=6, labelpad=1)
        axes[r, 0].set_ylabel(title, fontsize=7)
    for c in range(N):
        for r, (picture, title) in enumerate(((pasted.images[c], "pasted (T 1.5)"), (pasted.masks[c], "mask"))):
            ax = axes[len(rows) + r, c]
            ax.imshow(picture, cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(title, fontsize=7)
    fig.suptitle(f"{args.texture}: MAF patch samples (numbers: log-likelihood under the flow, nats)", fontsize=9)
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=70)


if __name__ == "__main__":
    main()
