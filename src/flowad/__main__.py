"""``python -m flowad`` runs the command line."""

from flowad.cli import main

main()
