"""Watch it learn: snapshots taken while training, rendered afterwards as training.gif.

The training loop owns a `TrainingRecorder` and calls `on_epoch` after every
epoch. Most epochs only add a metrics row; on the epochs `snapshot_epochs`
plans (at most 120, spread evenly, the last epoch always among them) it also
evaluates the model once on a coarse grid: class probabilities over a
100x100 grid of the two features, or the fitted values over a dense line for
a one-input regression. Rendering happens once, at the end, with
`matplotlib.animation` and its Pillow writer, so training pays only for the
grid forwards (a few milliseconds each with the compiled executor).

What the frames show depends on the data:
- classification with 2 features: the decision boundary shaded by
  confidence, with the points, beside the loss curve drawn so far;
- regression with 1 input: the fitted curve over the data, beside the loss;
- anything else: the loss and the accuracy (or R²) curves growing.
"""

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from micronet.files import replacing
from micronet.palette import class_colors
from micronet.tasks import TASKS, find_metric, headlines

__all__ = ["MAX_FRAMES", "snapshot_epochs", "frame_rate", "TrainingRecorder", "recorder_for"]

MAX_FRAMES = 120
GRID = 100  # grid cells per side for the decision boundary
LINE = 200  # points on the fitted curve
HOLD_LAST_MS = 1500  # the finished model stays on screen before the GIF loops


def snapshot_epochs(total_epochs: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """The epochs (1-based) to snapshot: at most `max_frames`, evenly spread, ending with `total_epochs`.

    With `total_epochs` <= `max_frames`, every epoch; otherwise epoch
    ceil(i * total / max_frames) for i = 1..max_frames.
    """
    for name, value in (("total_epochs", total_epochs), ("max_frames", max_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    n = min(total_epochs, max_frames)
    return [(i * total_epochs + n - 1) // n for i in range(1, n + 1)]


def frame_rate(n_frames: int) -> int:
    """Frames per second so that the GIF plays in about 5 seconds, between 4 and 20 fps."""
    return int(min(20, max(4, round(n_frames / 5))))


class TrainingRecorder:
    """Metrics every epoch and model snapshots on planned epochs; `render` turns them into a GIF.

    Build one with `recorder_for` (it picks the picture from the task and the
    number of features) or the `boundary`, `fit` and `curves` constructors.
    Arrays are used as given: pass the features the model sees (standardised
    when the run standardises), and a `predict` that takes them.
    """

    # Set by the boundary and fit constructors: the axes' ticks, and the points predicted for a frame.
    xs: np.ndarray
    ys: np.ndarray
    line: np.ndarray
    grid: np.ndarray

    def __init__(self, kind: str, total_epochs: int, max_frames: int = MAX_FRAMES) -> None:
        if kind not in ("boundary", "fit", "curves"):
            raise ValueError(f"kind must be one of boundary, fit, curves, got {kind!r}")
        self.kind = kind
        self.total_epochs = total_epochs
        self.plan = set(snapshot_epochs(total_epochs, max_frames))
        self.max_frames = max_frames
        self.rows: dict[int, Mapping] = {}  # epoch -> metrics row
        self.snapshots: dict[int, np.ndarray | None] = {}  # epoch -> picture data (None for curves)
        self.points: list[tuple] = []  # (X, y, marker, split) drawn under the boundary or the fit
        self.class_names: list | None = None
        self.true_function: Callable | None = None
        self.predict: Callable | None = None  # used by on_epoch_end, the callback form

    # ----- constructors ------------------------------------------------------------

    @classmethod
    def boundary(cls, X: np.ndarray, y: np.ndarray, total_epochs: int, *, X_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, class_names: Sequence | None = None,
                 max_frames: int = MAX_FRAMES) -> "TrainingRecorder":
        """Decision boundary frames for 2 features; `y` holds class indices 0..k-1."""
        rec = cls("boundary", total_epochs, max_frames)
        rec._set_points(X, y, X_test, y_test, width=2)
        everything = np.vstack([p[0] for p in rec.points])
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-9)
        rec.xs = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID)
        rec.ys = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID)
        gx, gy = np.meshgrid(rec.xs, rec.ys)
        rec.grid = np.column_stack([gx.ravel(), gy.ravel()])
        rec.class_names = None if class_names is None else list(class_names)
        return rec

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, total_epochs: int, *, X_test: np.ndarray | None = None,
            y_test: np.ndarray | None = None, true_function: Callable | None = None,
            max_frames: int = MAX_FRAMES) -> "TrainingRecorder":
        """Fitted-curve frames for a regression with one input."""
        rec = cls("fit", total_epochs, max_frames)
        rec._set_points(X, y, X_test, y_test, width=1)
        everything = np.concatenate([p[0][:, 0] for p in rec.points])
        pad = 0.05 * max(everything.max() - everything.min(), 1e-9)
        rec.line = np.linspace(everything.min() - pad, everything.max() + pad, LINE)
        rec.grid = rec.line[:, None]
        rec.true_function = true_function
        return rec

    @classmethod
    def curves(cls, total_epochs: int, max_frames: int = MAX_FRAMES) -> "TrainingRecorder":
        """Frames of the metric curves alone (no picture of the model)."""
        return cls("curves", total_epochs, max_frames)

    def _set_points(self, X, y, X_test, y_test, width):
        for split, (Xs, ys), marker in (("train", (X, y), "o"), ("test", (X_test, y_test), "X")):
            if Xs is None:
                continue
            Xs = np.asarray(Xs, dtype=np.float64)
            Xs = Xs[:, None] if Xs.ndim == 1 else Xs
            ys = np.asarray(ys)
            if Xs.ndim != 2 or Xs.shape[1] != width or len(Xs) != len(ys):
                name = "X" if split == "train" else "X_test"
                raise ValueError(f"{name} must be (n, {width}) with one target per row, got {Xs.shape} and {ys.shape}")
            self.points.append((Xs, ys, marker, split))

    # ----- during training -----------------------------------------------------------

    def on_epoch(self, epoch: int, row: Mapping, predict: Callable | None = None) -> None:
        """Record epoch `epoch`'s metrics; on a planned epoch also snapshot the model through `predict`.

        `row` is the epoch's metrics, named as in metrics.csv (train_loss,
        test_accuracy, ...) or as Keras names them (loss, val_loss, ...).
        `predict` maps the recorder's grid to class probabilities, (n, k)
        (boundary), or to one value per row (fit); it is only called on
        planned epochs, so pass it every time. Call `snapshot(0, predict)`
        before training to open with the untrained model.
        """
        self.rows[epoch] = dict(row)
        if epoch in self.plan:
            self.snapshot(epoch, predict)

    def add_rows(self, rows: Sequence[Mapping]) -> None:
        """Metrics of epochs trained before recording began (a resumed run): curves only, no snapshots."""
        for row in rows:
            self.rows[row["epoch"]] = dict(row)

    def on_epoch_end(self, epoch: int, logs: Mapping) -> None:
        """The recorder as a `micronet.fit` callback: set `recorder.predict` first (it never stops training)."""
        self.on_epoch(epoch, logs, self.predict)

    def snapshot(self, epoch: int, predict: Callable | None = None) -> None:
        """Take a snapshot now: epoch 0 before training, or any epoch the plan did not include."""
        if self.kind == "curves":
            self.snapshots[epoch] = None
            return
        if predict is None:
            raise ValueError(f"a {self.kind} recorder needs predict to snapshot epoch {epoch}")
        out = np.asarray(predict(self.grid), dtype=np.float64)
        if self.kind == "fit":
            self.snapshots[epoch] = out.reshape(len(self.grid), -1)[:, 0].astype(np.float32)
        else:
            self.snapshots[epoch] = _shade(out).reshape(GRID, GRID, 3)

    # ----- afterwards --------------------------------------------------------------------

    def frame_epochs(self) -> list[int]:
        """The snapshots that become frames: at most max_frames, evenly spread, the first and the latest kept."""
        taken = sorted(self.snapshots)
        if len(taken) <= self.max_frames:
            return taken
        picks = np.linspace(0, len(taken) - 1, self.max_frames).round().astype(int)  # keeps the first and the last
        return [taken[i] for i in picks]

    def render(self, path: str | os.PathLike, *, predict: Callable | None = None, fps: int | None = None) -> Path:
        """Write the animation as a GIF to `path`, atomically; return the path.

        The last recorded epoch is always the last frame: if training stopped
        before the plan's final epoch, it is snapshotted now, through
        `predict` (a curves recorder needs none).
        """
        from matplotlib.animation import FuncAnimation

        last = max(self.rows, default=None)
        if last is not None and last not in self.snapshots and (predict is not None or self.kind == "curves"):
            self.snapshot(last, predict)
        epochs = self.frame_epochs()
        if not epochs:
            raise ValueError("no snapshot was taken: call on_epoch during training before render")
        fig, update, animated = self._figure(epochs)
        animation = FuncAnimation(fig, update, frames=len(epochs), init_func=lambda: [], blit=False, repeat=False)
        path = Path(path)
        with replacing(path) as tmp:  # a fresh temporary beside `path`, renamed over it when complete
            writer = _writer_class()(animated, fps=fps or frame_rate(len(epochs)))
            animation.save(str(tmp), writer=writer, dpi=fig.dpi)
        return path

    def _figure(self, epochs):
        """(Figure, update(i) that sets it to frame i, the artists that change) for these epochs."""
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8.0, 3.6), dpi=80)
        _quiet_canvas(fig)
        fig.subplots_adjust(left=0.05 if self.kind == "boundary" else 0.08, right=0.98, bottom=0.15, top=0.88,
                            wspace=0.25)
        left, right = fig.subplots(1, 2)
        if self.kind == "curves":
            panels = [self._metric_panel(left, "loss")]
            keys = set().union(*(r.keys() for r in self.rows.values())) if self.rows else set()
            score = next((m.name for m in headlines()
                          if {m.name, f"train_{m.name}", f"test_{m.name}", f"val_{m.name}"} & keys), None)
            if score:
                panels.append(self._metric_panel(right, score))
            else:
                right.set_axis_off()
        else:
            model = self._boundary_panel(left) if self.kind == "boundary" else self._fit_panel(epochs, left)
            panels = [model, self._metric_panel(right, "loss")]

        def update(i):
            for draw, _ in panels:
                draw(epochs[i])

        return fig, update, [artist for _, artists in panels for artist in artists]

    def _boundary_panel(self, ax):
        first = self.snapshots[min(self.snapshots)]
        image = ax.imshow(first, origin="lower", interpolation="bilinear", aspect="auto",
                          extent=(self.xs[0], self.xs[-1], self.ys[0], self.ys[-1]))
        n_classes = max(int(max(np.max(p[1]) for p in self.points)) + 1, len(self.class_names or ()), 2)
        colors = np.array(class_colors(n_classes))
        points = [ax.scatter(X[:, 0], X[:, 1], c=colors[y.astype(int)], marker=marker, s=16 if marker == "o" else 26,
                             edgecolors="black", linewidths=0.4) for X, y, marker, _ in self.points]
        ax.set(xticks=[], yticks=[], xlabel="feature 0", ylabel="feature 1")
        from matplotlib.lines import Line2D

        names = self.class_names or list(range(n_classes))
        handles = [Line2D([], [], ls="", marker="s", ms=7, mfc=colors[k], mec="black", mew=0.4, label=str(names[k]))
                   for k in range(n_classes)]
        if len(self.points) == 2:
            handles += [Line2D([], [], ls="", marker=marker, ms=6, mfc="0.85", mec="black", mew=0.4, label=split)
                        for _, _, marker, split in self.points]
        # inside the panel, where the figure has no room beside it; redrawn over the picture with the points
        legend = ax.legend(handles=handles, loc="best", fontsize="x-small", framealpha=0.8, handletextpad=0.2,
                  borderpad=0.3, labelspacing=0.25)
        title = ax.set_title(" ")
        headline = TASKS["classification"].headline_metric
        score = f"{'test' if any(p[3] == 'test' for p in self.points) else 'train'}_{headline.name}"

        def draw(epoch):
            image.set_data(self.snapshots[epoch])
            title.set_text(_caption(epoch, self.rows.get(epoch, {}), score, headline))

        return draw, [image, *points, legend, title]  # these sit on the picture, so they are redrawn over it

    def _fit_panel(self, epochs, ax):
        for X, y, _, split in self.points:
            ax.scatter(X[:, 0], y.reshape(len(y), -1)[:, 0], s=10, alpha=0.5, edgecolors="none",
                       color="tab:blue" if split == "train" else "tab:green", label=split)
        if self.true_function is not None:
            ax.plot(self.line, np.asarray(self.true_function(self.line), dtype=np.float64).reshape(-1), "--",
                    color="0.3", lw=1.2, label="true function")
        values = np.concatenate([self.snapshots[e] for e in epochs])
        data = np.concatenate([p[1].reshape(-1) for p in self.points]).astype(np.float64)
        lo = min(data.min(), np.percentile(values, 1))  # an untrained net's wild start does not flatten the rest
        hi = max(data.max(), np.percentile(values, 99))
        pad = 0.08 * max(hi - lo, 1e-9)
        ax.set(xlim=(self.line[0], self.line[-1]), ylim=(lo - pad, hi + pad), xlabel="x", ylabel="y")
        (curve,) = ax.plot(self.line, self.snapshots[epochs[0]], color="tab:red", lw=2, label="model")
        ax.legend(loc="upper left", fontsize="small", framealpha=0.8)  # static: redrawing it costs more than the rest
        title = ax.set_title(" ")
        headline = TASKS["regression"].headline_metric
        score = f"{'test' if any(p[3] == 'test' for p in self.points) else 'train'}_{headline.name}"

        def draw(epoch):
            curve.set_ydata(self.snapshots[epoch])
            title.set_text(_caption(epoch, self.rows.get(epoch, {}), score, headline))

        return draw, [curve, title]

    def _metric_panel(self, ax, metric):
        """Curves of `metric` per split on fixed axes, drawn up to the frame's epoch."""
        from micronet.plot import METRICS, SPLITS

        recorded = np.array(sorted(self.rows))
        series = []
        for split, color in SPLITS:
            keys = {"train": (f"train_{metric}", metric), "validation": (f"val_{metric}",), "test": (f"test_{metric}",)}
            key = next((k for k in keys[split] if any(k in r for r in self.rows.values())), None)
            if key is not None:
                values = np.array([_lookup(self.rows[e], key, np.nan) for e in recorded], dtype=np.float64)
                (line,) = ax.plot(recorded, values, color=color, lw=1.5, label=split)
                series.append((line, values))
        finite = np.concatenate([v[np.isfinite(v)] for _, v in series]) if series else np.array([])
        known = find_metric(metric)
        if known is not None and known.limits is not None:
            lo, hi = known.limits
            ax.set_ylim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
        elif finite.size:
            lo, hi = min(finite.min(), 0.0), finite.max()
            ax.set_ylim(lo, hi + 0.05 * max(hi - lo, 1e-9))
        ax.set_xlim(1, max(int(recorded[-1]), 2) if len(recorded) else 2)
        ylabel, title = METRICS.get(metric, (metric, metric))
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.set_title(title, loc="left")
        if series:  # above the axes, right of the title: static, and no curve ever runs under it
            ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=len(series), fontsize="small",
                      frameon=False, borderaxespad=0.2, handlelength=1.5)
        animated = [line for line, _ in series]

        def draw(epoch):
            shown = recorded <= epoch
            for line, values in series:
                line.set_data(recorded[shown], values[shown])

        return draw, animated


@functools.cache
def _writer_class():
    """Matplotlib's Pillow writer, made fast for frames that change only a few artists.

    The stock writer redraws the whole figure for every frame (savefig), and
    most of that time goes on text: tick labels, titles, legends that never
    change. This one draws the figure once without the animated artists,
    then for each frame restores that background and draws only those
    artists (blitting). The frames share one palette, taken from the last
    frame, and are mapped to it without dithering: an order of magnitude
    faster than a median cut per frame, with no palette flicker. The last
    frame is held for HOLD_LAST_MS before the GIF loops.
    """
    from matplotlib.animation import PillowWriter
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    class BlitPillowWriter(PillowWriter):
        def __init__(self, animated, **kwargs):
            super().__init__(**kwargs)
            self.animated = animated  # artists that change, in drawing order

        def setup(self, fig, outfile, dpi=None):
            super().setup(fig, outfile, dpi=dpi)
            for artist in self.animated:
                artist.set_animated(True)
            fig.canvas.draw()  # everything that does not change
            self._background = fig.canvas.copy_from_bbox(fig.bbox)

        def grab_frame(self, **savefig_kwargs):
            canvas = cast(FigureCanvasAgg, self.fig.canvas)  # render() draws with Agg
            canvas.restore_region(self._background)
            for artist in self.animated:
                artist.axes.draw_artist(artist)
            width, height = canvas.get_width_height()
            frame = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
            self._frames.append(frame.convert("RGB"))  # type: ignore[attr-defined]  # PillowWriter's frames

        def finish(self):
            grabbed = self._frames  # type: ignore[attr-defined]  # PillowWriter's frames
            palette = grabbed[-1].quantize(256, method=Image.Quantize.FASTOCTREE)
            frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in grabbed]
            durations = [int(1000 / self.fps)] * len(frames)
            durations[-1] = max(durations[-1], HOLD_LAST_MS)
            frames[0].save(self.outfile, format="GIF", save_all=True, append_images=frames[1:], duration=durations,
                           loop=0)

    return BlitPillowWriter


def _quiet_canvas(fig):
    """Give `fig` an Agg canvas whose draw_idle does nothing: the animation calls it every frame, the writer draws."""
    return _quiet_canvas_class()(fig)


@functools.cache
def _quiet_canvas_class():
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    class QuietCanvas(FigureCanvasAgg):
        def draw_idle(self, *args, **kwargs):
            pass

    return QuietCanvas


def _caption(epoch, row, key, metric):
    value = _lookup(row, key)
    split = key.split("_")[0]
    return f"epoch {epoch}" + (f", {split} {metric.label} {metric.show(value)}" if value is not None else "")


def _lookup(row, key, default=None):
    """A metrics value by metrics.csv name, or by its Keras name (train_loss -> loss)."""
    if key in row:
        return row[key]
    if key.startswith("train_") and key[len("train_"):] in row:
        return row[key[len("train_"):]]
    return default


def _shade(probs):
    """Class probabilities as the decision-boundary picture: the top class's colour, faded as confidence falls."""
    if probs.ndim != 2 or probs.shape[1] < 2:
        raise ValueError(f"predict must give (n, k >= 2) class probabilities, got shape {probs.shape}")
    k = probs.shape[1]
    colors = np.array(class_colors(k))
    top = probs.max(axis=1)
    confidence = np.clip((top - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0)
    shade = 0.25 + 0.5 * confidence[:, None]
    return np.round(255 * (1.0 - shade * (1.0 - colors[probs.argmax(axis=1)]))).astype(np.uint8)


def recorder_for(task: str, X: np.ndarray, y: np.ndarray, total_epochs: int, *, X_test: np.ndarray | None = None,
                 y_test: np.ndarray | None = None, class_names: Sequence | None = None,
                 true_function: Callable | None = None, max_frames: int = MAX_FRAMES) -> TrainingRecorder:
    """The recorder a run needs: a boundary for 2-feature classification, a fit for 1-input regression, else curves."""
    width = np.asarray(X).reshape(len(X), -1).shape[1]
    if task == "classification" and width == 2:
        return TrainingRecorder.boundary(X, y, total_epochs, X_test=X_test, y_test=y_test, class_names=class_names,
                                         max_frames=max_frames)
    if task == "regression" and width == 1 and np.asarray(y).reshape(len(y), -1).shape[1] == 1:
        return TrainingRecorder.fit(X, y, total_epochs, X_test=X_test, y_test=y_test, true_function=true_function,
                                    max_frames=max_frames)
    return TrainingRecorder.curves(total_epochs, max_frames)
