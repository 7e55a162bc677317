"""training.gif: which epochs are snapshotted, what a snapshot holds, and the GIF that comes out.

The frames are read back with Pillow. Predictors here are made up so that
each epoch's picture is known in advance: one class everywhere on even
epochs, the other on odd ones.
"""

import numpy as np
import pytest
from PIL import Image

import micronet
from micronet import animate
from micronet.animate import HOLD_LAST_MS, TrainingRecorder, frame_rate, recorder_for, snapshot_epochs
from micronet.plot import class_colors


def corners():
    """Four points far from the middle of the plane, so the picture's centre shows only the background."""
    X = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    return X, np.array([0, 1, 0, 1])


def one_class(k, n_classes=2):
    """A predictor that is sure of class k everywhere."""
    def predict(G):
        probs = np.zeros((len(G), n_classes))
        probs[:, k] = 1.0
        return probs

    return predict


def row(epoch):
    return {"epoch": epoch, "train_loss": 1.0 / epoch, "test_loss": 1.2 / epoch, "train_accuracy": 0.5,
            "test_accuracy": 0.6}


def frames_of(path):
    """(RGB arrays, per-frame durations in ms, loop setting) of a GIF."""
    im = Image.open(path)
    frames, durations = [], []
    for i in range(im.n_frames):
        im.seek(i)
        frames.append(np.asarray(im.convert("RGB"), dtype=float) / 255)
        durations.append(im.info["duration"])
    return frames, durations, im.info.get("loop")


# ----- which epochs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "total, expected",
    [(1, [1]), (5, [1, 2, 3, 4, 5]), (120, list(range(1, 121))), (121, list(range(2, 122)))],
)
def test_up_to_the_frame_limit_every_epoch_is_snapshotted(total, expected):
    assert snapshot_epochs(total) == expected


def test_long_runs_are_snapshotted_evenly_and_end_on_the_last_epoch():
    epochs = snapshot_epochs(1000)
    assert len(epochs) == 120 and epochs[0] == 9 and epochs[-1] == 1000  # ceil(1000 / 120) = 9
    assert set(np.diff(epochs)) == {8, 9}  # 1000 / 120 = 8.33: steps of 8 and 9, nothing bunched
    assert snapshot_epochs(7, max_frames=3) == [3, 5, 7]


@pytest.mark.parametrize("args, message", [((0,), "total_epochs must be an int >= 1, got 0"),
                                           ((10, 0), "max_frames must be an int >= 1, got 0"),
                                           ((2.5,), "total_epochs must be an int >= 1, got 2.5")])
def test_snapshot_epochs_refuses_bad_counts(args, message):
    with pytest.raises(ValueError, match=message):
        snapshot_epochs(*args)


def test_frame_rate_plays_in_about_five_seconds_within_limits():
    assert [frame_rate(n) for n in (5, 30, 60, 100, 120)] == [4, 6, 12, 20, 20]


# ----- recording ------------------------------------------------------------------------------------


def test_metrics_are_kept_every_epoch_but_the_model_is_asked_only_on_planned_epochs():
    X, y = corners()
    rec = TrainingRecorder.boundary(X, y, 300)
    calls = []

    def predict(G):
        calls.append(len(G))
        return one_class(0)(G)

    for epoch in range(1, 301):
        rec.on_epoch(epoch, row(epoch), predict)
    assert len(rec.rows) == 300
    assert len(calls) == 120 and set(calls) == {100 * 100}  # the coarse grid, once per planned epoch
    assert sorted(rec.snapshots) == snapshot_epochs(300)


def test_a_boundary_snapshot_is_the_shaded_picture_of_the_probabilities():
    X, y = corners()
    rec = TrainingRecorder.boundary(X, y, 2)
    rec.on_epoch(1, row(1), one_class(1))
    picture = rec.snapshots[1]
    assert picture.shape == (100, 100, 3) and picture.dtype == np.uint8
    sure = 1.0 - 0.75 * (1.0 - np.array(class_colors(2)[1]))  # full confidence: 75% of the way to the colour
    assert np.all(np.abs(picture / 255 - sure) <= 0.5 / 255 + 1e-12)
    grid = rec.grid
    assert grid.shape == (100 * 100, 2)
    assert grid[:, 0].min() == pytest.approx(-1.2) and grid[:, 1].max() == pytest.approx(1.2)  # data +- 10%


def test_a_fit_snapshot_holds_the_curve_on_a_dense_line():
    x = np.linspace(0.0, 2.0, 11)
    rec = TrainingRecorder.fit(x, 3 * x, 1)
    rec.on_epoch(1, {"train_loss": 0.5}, lambda G: 3 * G[:, 0] + 1)
    line = rec.line
    assert len(line) == 200 and line[0] == pytest.approx(-0.1) and line[-1] == pytest.approx(2.1)
    np.testing.assert_allclose(rec.snapshots[1], 3 * line + 1, rtol=1e-6)


@pytest.mark.parametrize(
    "task, width, y_shape, kind",
    [("classification", 2, (4,), "boundary"), ("regression", 1, (4,), "fit"), ("classification", 4, (4,), "curves"),
     ("regression", 2, (4,), "curves"), ("regression", 1, (4, 2), "curves")],
)
def test_recorder_for_picks_the_picture_from_the_task_and_the_shapes(task, width, y_shape, kind):
    X = np.random.default_rng(0).normal(size=(4, width))
    y = np.zeros(y_shape, dtype=int if task == "classification" else float)
    assert recorder_for(task, X, y, 10).kind == kind


def test_recording_mistakes_are_named():
    X, y = corners()
    rec = TrainingRecorder.boundary(X, y, 3)
    with pytest.raises(ValueError, match="a boundary recorder needs predict to snapshot epoch 1"):
        rec.on_epoch(1, row(1))
    with pytest.raises(ValueError, match=r"predict must give \(n, k >= 2\) class probabilities, got shape \(10000,\)"):
        rec.on_epoch(2, row(2), lambda G: G[:, 0])
    with pytest.raises(ValueError, match=r"X must be \(n, 2\) with one target per row, got \(4, 3\)"):
        TrainingRecorder.boundary(np.zeros((4, 3)), y, 3)
    with pytest.raises(ValueError, match="no snapshot was taken"):
        TrainingRecorder.curves(3).render("unused.gif")
    with pytest.raises(ValueError, match="kind must be one of boundary, fit, curves, got 'movie'"):
        TrainingRecorder("movie", 3)


def test_frames_are_thinned_evenly_keeping_the_first_and_the_last():
    rec = TrainingRecorder.curves(300, max_frames=120)
    rec.snapshot(0)  # the untrained model, before the first epoch
    for epoch in range(1, 301):
        rec.on_epoch(epoch, row(epoch))
    frames = rec.frame_epochs()
    assert len(rec.snapshots) == 121 and len(frames) == 120
    assert frames[0] == 0 and frames[-1] == 300 and frames == sorted(set(frames))


# ----- the GIF ---------------------------------------------------------------------------------------


def record_alternating(n_epochs):
    """Class 0 everywhere on even epochs, class 1 on odd ones."""
    X, y = corners()
    rec = TrainingRecorder.boundary(X, y, n_epochs, X_test=X * 0.9, y_test=y)
    for epoch in range(1, n_epochs + 1):
        rec.on_epoch(epoch, row(epoch), one_class(epoch % 2))
    return rec


def test_the_gif_has_a_frame_per_snapshot_ending_on_the_last_epoch(tmp_path):
    rec = record_alternating(5)
    path = rec.render(tmp_path / "training.gif")
    assert path == tmp_path / "training.gif"
    frames, durations, loop = frames_of(path)
    assert len(frames) == 5 and frames[0].shape == (288, 640, 3)  # 8 x 3.6 inches at 80 dpi
    assert loop == 0  # plays forever
    assert durations == [1000 // frame_rate(5)] * 4 + [HOLD_LAST_MS]  # the result stays up before looping
    colours = [1.0 - 0.75 * (1.0 - np.array(c)) for c in class_colors(2)]
    for epoch, frame in zip(range(1, 6), frames):
        centre = frame[144, 160]  # the middle of the left panel: background only
        distances = [np.abs(centre - c).max() for c in colours]
        assert np.argmin(distances) == epoch % 2 and min(distances) < 0.03, (epoch, centre)


def test_the_loss_panel_grows_frame_by_frame(tmp_path):
    frames, _, _ = frames_of(record_alternating(4).render(tmp_path / "t.gif"))
    right = [f[40:250, 360:630] for f in frames]  # the loss panel
    ink = [np.sum(np.abs(r - right[0]).max(axis=2) > 0.2) for r in right]
    assert ink[0] == 0 and ink[1] < ink[2] < ink[3]  # more of the curve in every frame


def test_render_replaces_a_symlink_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "precious").write_bytes(b"keep")
    (tmp_path / "training.gif").symlink_to(tmp_path / "precious")
    record_alternating(2).render(tmp_path / "training.gif")
    assert (tmp_path / "precious").read_bytes() == b"keep"
    assert not (tmp_path / "training.gif").is_symlink()
    assert Image.open(tmp_path / "training.gif").format == "GIF"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious", "training.gif"]


def test_a_failed_render_keeps_the_old_gif(tmp_path, monkeypatch):
    path = tmp_path / "training.gif"
    path.write_bytes(b"old")

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        record_alternating(2).render(path)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["training.gif"]


def test_a_regression_fit_and_the_curves_render(tmp_path):
    x = np.linspace(-2, 2, 30)
    fit = TrainingRecorder.fit(x, np.sin(x), 3, true_function=np.sin)
    curves = TrainingRecorder.curves(3)
    for epoch in (1, 2, 3):
        metrics = {"train_loss": 1 / epoch, "train_r2": 1 - 1 / epoch}
        fit.on_epoch(epoch, metrics, lambda G, e=epoch: np.sin(G[:, 0]) * e / 3)
        curves.on_epoch(epoch, metrics)
    fit_frames, _, _ = frames_of(fit.render(tmp_path / "fit.gif"))
    curve_frames, _, _ = frames_of(curves.render(tmp_path / "curves.gif"))
    assert len(fit_frames) == 3 and not np.array_equal(fit_frames[0], fit_frames[-1])
    assert len(curve_frames) == 3 and curve_frames[-1].shape == (288, 640, 3)
    assert not np.array_equal(curve_frames[0], curve_frames[-1])  # the curves grow from frame to frame


def test_the_recorder_is_a_micronet_fit_callback(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    model = micronet.MLP(2, [4, 2], seed=0)
    rec = recorder_for("classification", X, y, 3)
    rec.predict = lambda G: micronet.predict_proba(model, G)
    micronet.fit(model, X, y, epochs=3, callbacks=[rec], progress=False, seed=0)
    assert sorted(rec.snapshots) == [1, 2, 3] and "loss" in rec.rows[3]
    frames, _, _ = frames_of(rec.render(tmp_path / "fit.gif"))
    assert len(frames) == 3


def test_matplotlib_is_not_imported_until_a_picture_is_made():
    import subprocess
    import sys

    code = ("import sys, micronet.animate as a; a.snapshot_epochs(10); a.TrainingRecorder.curves(3).on_epoch(1, {}); "
            "print('matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
    assert animate.__all__ == ["MAX_FRAMES", "snapshot_epochs", "frame_rate", "TrainingRecorder", "recorder_for"]


def test_training_that_stops_early_still_ends_on_its_last_epoch(tmp_path):
    X, y = corners()
    rec = TrainingRecorder.boundary(X, y, 1000)  # planned: 9, 17, 25, ...
    for epoch in range(1, 21):  # early stopping ends it at epoch 20
        rec.on_epoch(epoch, row(epoch), one_class(0))
    assert sorted(rec.snapshots) == [9, 17]
    rec.render(tmp_path / "t.gif", predict=one_class(1))
    assert rec.frame_epochs() == [9, 17, 20]
    frames, _, _ = frames_of(tmp_path / "t.gif")
    sure_of_1 = 1.0 - 0.75 * (1.0 - np.array(class_colors(2)[1]))
    assert np.abs(frames[-1][144, 160] - sure_of_1).max() < 0.03  # the final model, as predict sees it now


def test_the_boundary_panel_has_axis_labels_and_a_legend_drawn_over_the_picture():
    rec = record_alternating(3)
    rec.class_names = ["north-west", "south-east"]
    fig, update, redrawn = rec._figure(rec.frame_epochs())
    update(len(rec.frame_epochs()) - 1)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("feature 0", "feature 1")
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["north-west", "south-east", "train", "test"]
    assert legend in redrawn  # else each frame's picture is drawn over it and hides it
    inside = ax.get_window_extent()
    box = legend.get_window_extent()
    assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1
