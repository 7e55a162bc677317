"""One palette: class 0 and class 1 have the same colours in the run directory's PNGs, its GIF and the playground.

The page's half is in tests/test_playground.py (it gets the palette from the
server and keeps no copy) and tests/test_playground_browser.py (what it draws).
"""

import matplotlib
import numpy as np
from matplotlib.colors import to_hex
from PIL import Image

from micronet import animate, palette, plot
from micronet.animate import TrainingRecorder
from micronet.palette import CLASS_COLORS, class_colors, rgb


def test_the_palette_is_tab10_then_its_lighter_shades():
    assert list(CLASS_COLORS[:10]) == [to_hex(c) for c in matplotlib.colormaps["tab10"].colors]
    assert list(CLASS_COLORS[10:]) == [to_hex(c) for c in matplotlib.colormaps["tab20"].colors[1::2]]
    assert len(set(CLASS_COLORS)) == 20
    assert class_colors(22)[20:] == class_colors(2)  # beyond twenty classes the palette starts again
    assert rgb("#ff7f0e") == (1.0, 127 / 255, 14 / 255)
    assert (palette.POSITIVE, palette.NEGATIVE) == (CLASS_COLORS[0], CLASS_COLORS[1])


def test_the_pictures_draw_with_the_palette():
    assert plot.class_colors is class_colors and animate.class_colors is class_colors


def halves():
    """Points on both sides of x = 0, and a model sure of class 0 on the left and of class 1 on the right."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(40, 2))
    y = (X[:, 0] > 0).astype(int)

    def predict_proba(G):
        right = (np.asarray(G)[:, 0] > 0).astype(float)
        return np.column_stack([1 - right, right])

    return X, y, predict_proba


def where_each_class_is_drawn(image):
    """The mean column of the pixels shaded as class 0's and class 1's regions (75% of the way to the colour)."""
    columns = np.arange(image.shape[1])[None, :].repeat(image.shape[0], axis=0)
    means = []
    for colour in CLASS_COLORS[:2]:
        shaded = 1.0 - 0.75 * (1.0 - np.array(rgb(colour)))
        near = np.abs(image - shaded).max(axis=2) < 0.03
        assert near.sum() > 1000, colour  # a whole region, not a few stray pixels
        means.append(columns[near].mean())
    return means


def test_the_pngs_class_0_is_the_palettes_first_colour(tmp_path):
    X, y, predict_proba = halves()
    path = plot.plot_decision_boundary(predict_proba, X, y, X, y, tmp_path / "decision_boundary.png")
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
    left, right = where_each_class_is_drawn(image)
    assert left < right  # class 0's colour on the left, where the model says class 0


def test_the_gifs_class_0_is_the_palettes_first_colour(tmp_path):
    X, y, predict_proba = halves()
    recorder = TrainingRecorder.boundary(X, y, 1)
    recorder.on_epoch(1, {"train_loss": 0.5, "train_accuracy": 1.0}, predict_proba)
    with Image.open(recorder.render(tmp_path / "training.gif")) as gif:
        frame = np.asarray(gif.convert("RGB"), dtype=np.float64) / 255
    left, right = where_each_class_is_drawn(frame[:, : frame.shape[1] // 2])  # the boundary panel
    assert left < right
