"""The book's figure style, and showing a figure once with its caption (numbered by :func:`xai_utils.report.figure`)."""

from __future__ import annotations

from typing import Any

FIGURE_DPI = 80  # figures are committed inside the executed notebooks: keep them light


def set_style() -> None:
    """One seaborn style for every figure of the book."""
    import matplotlib as mpl
    import pandas as pd
    import seaborn as sns

    pd.set_option("display.max_colwidth", None)  # a claim or quantity is never cut to "..."
    sns.set_theme(style="whitegrid", context="notebook", palette="colorblind")
    mpl.rcParams.update({"figure.dpi": FIGURE_DPI, "savefig.dpi": FIGURE_DPI, "figure.figsize": (7.0, 4.0),
                         "axes.titleweight": "bold", "image.cmap": "viridis"})


def clear_axis(ax: Any) -> None:
    """An axis that shows an image: no ticks, no grid."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def show(fig: Any, caption: str) -> None:
    """Show a matplotlib figure (or the figure of an Axes) once, with its caption (Markdown) below it.

    The figure is closed after it is shown, so that the inline backend does not draw it a second time.
    """
    import matplotlib.pyplot as plt
    from IPython.display import Markdown, display

    fig = getattr(fig, "figure", fig)
    display(fig)
    plt.close(fig)
    display(Markdown(caption))
