"""Distributed training entry point for ``torchrun``.

``torchrun --nproc-per-node N -m flowad.train DATA -o MODEL [fit options]`` is
``flowad fit DATA -o MODEL [fit options] --distributed`` in every one of the N processes: they join
the process group torchrun describes (gloo on CPU, nccl on GPU; ``--backend``), train one model
data-parallel (:mod:`flowad.core.distributed`), and rank 0 saves it.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run ``flowad fit ... --distributed`` with ``argv`` (default: the command-line arguments)."""
    from flowad.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    sys.argv = [sys.argv[0], "fit", *args, *([] if "--distributed" in args else ["--distributed"])]
    cli_main()


if __name__ == "__main__":
    main()
