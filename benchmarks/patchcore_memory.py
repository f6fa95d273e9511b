"""PatchCore's memory against the number of training images: peak resident memory of a fit (one
fresh process per size, one thread) with the candidate pool capped, beside the size of the images
themselves, the pool and the bank.

Usage: python benchmarks/patchcore_memory.py --sizes 50,100,200,400,800 --out docs/results/images
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from flowad.datasets.textures import make_texture_set
from flowad.models import PatchCoreDetector
n, max_patches = int(sys.argv[1]), int(sys.argv[2])
train, _ = make_texture_set("gravel", n_train=n, n_test_good=0, n_test_defect=0, random_state=0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
d = PatchCoreDetector(input_size=128, max_patches=max_patches, random_state=0).fit(train.images)
print(json.dumps({"train_images": n, "max_patches": max_patches, "candidates": d.n_candidates_,
                  "bank": int(d.memory_bank_.shape[0]), "feature_dim": int(d.memory_bank_.shape[1]),
                  "fit_seconds": time.perf_counter() - start,
                  "images_mb": train.images.nbytes / 2**20 * 4,  # as float32, the fit's input tensor
                  "rss_before_fit_mb": base / 1024,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,100,200,400,800")
    parser.add_argument("--max-patches", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=Path("runs/patchcore_memory"))
    args = parser.parse_args()
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        result = subprocess.run([sys.executable, "-c", CHILD, str(n), str(args.max_patches)], capture_output=True,
                                text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in rows[-1].items()}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# PatchCore memory against training images", "",
             "Written by `benchmarks/patchcore_memory.py` (gravel crops at 128 px, `input_size=128`, "
             f"`max_patches={args.max_patches}`, one thread, one fresh process per row).", "",
             "| training images | candidates | bank | images as float32 (MB) | peak RSS (MB) | fit (s) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['train_images']} | {r['candidates']} | {r['bank']} | {r['images_mb']:.0f} | "
              f"{r['peak_rss_mb']:.0f} | {r['fit_seconds']:.0f} |" for r in rows]
    (args.out / "patchcore_memory.md").write_text("\n".join(lines) + "\n")
    (args.out / "patchcore_memory.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
