"""Matplotlib figures for PNG reports, made without pyplot: nothing global changes (no backend
switch, no figure registry), so plotting from flowad never disturbs a notebook's own plots.

matplotlib is optional; asking for a figure without it raises one line with the install command.

Example:
    >>> fig, ax = subplots(figsize=(2, 2))   # doctest: +SKIP
    >>> _ = ax.plot([0, 1], [0, 1]); fig.savefig("line.png")   # doctest: +SKIP
"""

from __future__ import annotations

from flowad.core.extras import require

__all__ = ["subplots"]


def subplots(nrows: int = 1, ncols: int = 1, *, extra: str = "bench", **figure_options):
    """``(figure, axes)`` like ``pyplot.subplots``, on a figure that belongs to no backend.

    Args:
        nrows, ncols: Grid of axes.
        extra: The flowad extra that installs matplotlib for the caller, for the message.
        **figure_options: ``figsize``, ``dpi``, ``squeeze`` and the like.
    """
    require("matplotlib", extra, "This figure")
    from matplotlib.figure import Figure

    squeeze = figure_options.pop("squeeze", True)
    sharex, sharey = figure_options.pop("sharex", False), figure_options.pop("sharey", False)
    gridspec_kw = figure_options.pop("gridspec_kw", None)
    figure = Figure(**figure_options)
    axes = figure.subplots(nrows, ncols, squeeze=squeeze, sharex=sharex, sharey=sharey, gridspec_kw=gridspec_kw)
    return figure, axes
