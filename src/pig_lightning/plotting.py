"""matplotlib for the figures (``pip install 'pig-lightning[plots]'``): loaded on first use, with a
clear error when it is missing, on a backend that needs no display; figures turned into arrays."""

from __future__ import annotations

import numpy as np


def pyplot():
    """matplotlib's pyplot on the Agg backend; a clear error when the ``plots`` extra is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("drawing charts needs matplotlib: pip install 'pig-lightning[plots]'") from exc
    return plt


def figure_array(fig, dpi: float = 72, margin: int = 6) -> np.ndarray:
    """``uint8 [H, W, 3]`` pixels of ``fig`` at ``dpi``, white borders cut to ``margin`` pixels
    (as ``bbox_inches="tight"`` does for the PNG); the figure is closed."""
    plt = pyplot()
    try:
        fig.set_dpi(dpi)
        fig.canvas.draw()
        pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    finally:
        plt.close(fig)
    inked = np.argwhere((pixels < 250).any(axis=-1))
    if not len(inked):
        return pixels.copy()
    (top, left), (bottom, right) = inked.min(axis=0), inked.max(axis=0)
    return pixels[max(0, top - margin) : bottom + margin + 1, max(0, left - margin) : right + margin + 1].copy()
