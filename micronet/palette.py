"""The colours every picture shares: one per class, the same in the PNGs, the GIF and the playground's page.

Declared once, here, as hex strings: `plot` and `animate` draw with
`class_colors`, and the playground's server hands the same strings to its
page, which keeps no copy. Standard library only, so the server need not
load matplotlib for them.
"""

from __future__ import annotations

__all__ = ["CLASS_COLORS", "NEGATIVE", "POSITIVE", "SPLIT_COLORS", "class_colors", "rgb"]

# Class k is CLASS_COLORS[k % 20]: matplotlib's tab10 (class 0 blue, class 1 orange), then
# beyond ten classes the lighter shades of the same ten (the light half of tab20).
CLASS_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
# Signed values (the playground's weights and neuron outputs): orange below zero, blue above,
# as in TensorFlow Playground; the two first class colours, so the page shows one blue and one orange.
NEGATIVE, POSITIVE = CLASS_COLORS[1], CLASS_COLORS[0]
# Curves per split (the training-curve PNGs and the playground's loss chart): tab10's blue, orange, green.
SPLIT_COLORS = {"train": CLASS_COLORS[0], "validation": CLASS_COLORS[1], "test": CLASS_COLORS[2]}


def rgb(color: str) -> tuple[float, float, float]:
    """A "#rrggbb" colour as red, green and blue in [0, 1] (what matplotlib's to_rgb gives)."""
    return int(color[1:3], 16) / 255, int(color[3:5], 16) / 255, int(color[5:7], 16) / 255


def class_colors(n_classes: int) -> list[tuple[float, float, float]]:
    """One colour per class as RGB in [0, 1]: distinct up to 20 classes, then the palette again."""
    return [rgb(CLASS_COLORS[k % len(CLASS_COLORS)]) for k in range(n_classes)]
