"""The training loop as a library: micronet.fit, History, EarlyStopping, callbacks, validation, resume."""

import copy
import csv
import math

import numpy as np
import pytest
from sklearn.datasets import make_moons

import micronet
from micronet import MLP, SGD, Adam
from micronet.config import parse_config
from micronet.data import PreparedData, Standardizer
from micronet.loop import (
    EarlyStopping,
    History,
    Plan,
    TrainState,
    config_loss,
    make_executor,
    new_state,
    run_epochs,
    score,
)
from micronet.optim import CosineSchedule
from micronet.train import load_run_data


@pytest.fixture(scope="module")
def moons():
    return make_moons(200, noise=0.15, random_state=0)


def weights(model):
    return [p.data for p in model.parameters()]


def without_seconds(rows):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


# ----- EarlyStopping on scripted metrics --------------------------------------------------


def feed(stopper, values, model=None, key="val_loss"):
    """Epoch numbers at which the stopper asked to stop, feeding one value per epoch."""
    model = model or MLP(1, [2], seed=0)
    return [epoch for epoch, v in enumerate(values, start=1) if stopper.update(epoch, {key: v}, model)]


def test_patience_counts_epochs_since_the_best_one():
    stopper = EarlyStopping(patience=2)
    assert feed(stopper, [1.0, 0.9, 0.95, 0.8, 0.85, 0.86, 0.7, 0.75]) == [6]  # 0.7 is a new best
    assert (stopper.best, stopper.best_epoch, stopper.wait) == (0.7, 7, 1)


def test_min_delta_requires_a_large_enough_improvement():
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    assert feed(stopper, [1.0, 0.97, 0.96]) == [3]  # 0.97 and 0.96 are within 0.05 of 1.0
    assert stopper.best == 1.0 and stopper.best_epoch == 1


def test_a_tie_with_the_best_is_not_an_improvement():
    # Keras's rule: the metric must beat the best, so a plateau at the best value counts against patience.
    stopper = EarlyStopping(patience=2)
    assert feed(stopper, [1.0, 1.0, 1.0]) == [3]
    assert (stopper.best_epoch, stopper.wait) == (1, 2)
    rising = EarlyStopping("val_accuracy", patience=2)
    assert feed(rising, [0.5, 0.5, 0.5], key="val_accuracy") == [3] and rising.best_epoch == 1


def test_an_improvement_of_exactly_min_delta_is_a_tie():
    stopper = EarlyStopping(patience=2, min_delta=0.25)
    assert feed(stopper, [1.0, 0.75, 0.5]) == []  # 0.75 is 0.25 better: a tie; 0.5 is 0.5 better: the new best
    assert (stopper.best, stopper.best_epoch, stopper.wait) == (0.5, 3, 0)
    rising = EarlyStopping("val_accuracy", patience=1, min_delta=0.25)
    assert feed(rising, [0.25, 0.5], key="val_accuracy") == [2] and rising.best_epoch == 1


def test_auto_mode_maximises_accuracy_and_r2():
    assert EarlyStopping("val_accuracy").mode == "max" and EarlyStopping("r2").mode == "max"
    assert EarlyStopping("val_mae").mode == "min"
    stopper = EarlyStopping("val_accuracy", patience=1)
    assert feed(stopper, [0.5, 0.7, 0.6], key="val_accuracy") == [3]
    assert stopper.best == 0.7


def test_a_metric_the_run_does_not_log_is_an_error_naming_it():
    with pytest.raises(ValueError, match=r"monitors 'val_loss', which this run does not log \(it logs: loss\)"):
        EarlyStopping().update(1, {"loss": 1.0}, MLP(1, [2], seed=0))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"patience": 0}, "patience must be an int >= 1, got 0"),
        ({"min_delta": -1}, "min_delta must be a finite number >= 0"),
        ({"mode": "up"}, "mode must be 'auto', 'min' or 'max'"),
    ],
)
def test_bad_early_stopping_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        EarlyStopping(**kwargs)


def test_early_stopping_state_round_trips_through_json_data():
    a = EarlyStopping(patience=3)
    model = MLP(2, [2], seed=0)
    feed(a, [1.0, 0.5, 0.6], model)
    b = EarlyStopping(patience=3)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    assert b.state_dict() == a.state_dict() and b.wait == 1 and b.best_weights == model.state_dict()
    with pytest.raises(ValueError, match="wait must be an int >= 0"):
        b.load_state_dict({**a.state_dict(), "wait": -1})


# ----- History ---------------------------------------------------------------------


ROWS = [
    {"epoch": 1, "train_loss": 0.5, "train_accuracy": 0.7, "val_loss": 0.6, "val_accuracy": 0.65, "lr": 0.1, "seconds": 0.01},
    {"epoch": 2, "train_loss": 0.25, "train_accuracy": 0.9, "val_loss": 0.3, "val_accuracy": 0.85, "lr": 0.1, "seconds": 0.01},
]


def test_history_uses_keras_names():
    h = History(ROWS, best_epoch=2)
    assert h.epoch == [1, 2] and len(h) == 2
    assert h.history == {"loss": [0.5, 0.25], "accuracy": [0.7, 0.9], "val_loss": [0.6, 0.3],
                         "val_accuracy": [0.65, 0.85], "lr": [0.1, 0.1]}
    assert h.best_epoch == 2 and not h.stopped_early


def test_history_to_csv_writes_the_rows_exactly(tmp_path):
    History(ROWS).to_csv(tmp_path / "h.csv")
    with open(tmp_path / "h.csv", newline="") as f:
        read = list(csv.DictReader(f))
    assert [{k: float(v) for k, v in row.items()} for row in read] == ROWS


def test_history_plot_returns_axes_with_a_line_per_split():
    ax = History(ROWS).plot()
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines["train loss"] == [0.5, 0.25] and lines["validation loss"] == [0.6, 0.3]
    assert lines["validation accuracy"] == [0.65, 0.85]


# ----- micronet.fit ------------------------------------------------------------------


def test_fit_trains_a_classifier_in_one_call(moons):
    X, y = moons
    model = MLP(2, [16, 16, 2], seed=0)
    history = micronet.fit(model, X, y, epochs=40, lr=0.05, momentum=0.9, seed=0, progress=False)
    assert isinstance(history, History) and history.epoch == list(range(1, 41))
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] >= 0.95
    assert "val_loss" not in history.history and history.best_epoch is None
    # The Values hold the trained weights: eager predictions reproduce the logged accuracy.
    predicted = np.array([np.argmax([v.data for v in model(x)]) for x in X.tolist()])
    assert np.mean(predicted == y) == history.history["accuracy"][-1]


def test_fit_is_deterministic_given_the_seed(moons):
    X, y = moons
    runs = []
    for seed in (0, 0, 1):
        model = MLP(2, [8, 2], seed=0)
        micronet.fit(model, X, y, epochs=3, seed=seed, progress=False)
        runs.append(weights(model))
    assert runs[0] == runs[1] and runs[0] != runs[2]


def test_validation_split_is_a_seeded_stratified_draw(moons):
    X, y = moons
    seen = {}

    def record(epoch, logs):
        seen[epoch] = logs

    history = micronet.fit(MLP(2, [8, 2], seed=0), X, y, epochs=2, validation_split=0.2, callbacks=[record],
                           seed=0, progress=False)
    scores = ("loss", "accuracy", "balanced_accuracy", "f1_macro")
    assert set(history.history) == {*scores, *(f"val_{name}" for name in scores), "lr"}
    assert seen[2]["val_loss"] == history.history["val_loss"][1]
    # 40 of 200 held out, 20 per class: accuracies are multiples of 1/40 and 1/160.
    assert all(round(a * 40, 9).is_integer() for a in history.history["val_accuracy"])
    assert all(round(a * 160, 9).is_integer() for a in history.history["accuracy"])


def test_validation_data_is_scored_every_epoch(moons):
    X, y = moons
    model = MLP(2, [8, 2], seed=0)
    history = micronet.fit(model, X[:150], y[:150], validation_data=(X[150:], y[150:]), epochs=3, progress=False)
    logits = np.array([[v.data for v in model(x)] for x in X[150:].tolist()])
    assert history.history["val_accuracy"][-1] == np.mean(logits.argmax(axis=1) == y[150:])


def test_early_stopping_stops_and_restores_the_best_epochs_weights(moons):
    X, y = moons
    snapshots = {}
    model = MLP(2, [16, 2], seed=0)

    def snapshot(epoch, logs):
        snapshots[epoch] = weights(model)

    # A large constant lr makes the validation loss wander, so patience runs out.
    history = micronet.fit(model, X, y, epochs=200, lr=0.5, momentum=0.9, validation_split=0.25,
                           early_stopping=EarlyStopping(patience=4), callbacks=[snapshot], seed=0, progress=False)
    assert history.stopped_early and len(history) < 200
    best = history.best_epoch
    assert history.history["val_loss"][best - 1] == min(history.history["val_loss"])
    assert len(history) == best + 4
    assert weights(model) == snapshots[best] != snapshots[len(history)]


def test_an_int_early_stopping_monitors_the_training_loss_without_validation(moons):
    X, y = moons
    history = micronet.fit(MLP(2, [4, 2], seed=0), X, y, epochs=300, lr=2.0, early_stopping=3, seed=0, progress=False)
    best = history.best_epoch
    assert history.history["loss"][best - 1] == min(history.history["loss"])


def test_an_int_early_stopping_monitors_the_validation_loss_when_validating(moons):
    X, y = moons
    # lr 1 makes the two losses disagree: validation is best at epoch 5, training at epoch 7.
    history = micronet.fit(MLP(2, [16, 2], seed=0), X, y, epochs=200, lr=1.0, momentum=0.9, validation_split=0.25,
                           early_stopping=3, seed=0, progress=False)
    val_loss, loss = history.history["val_loss"], history.history["loss"]
    best = history.best_epoch
    assert history.stopped_early and len(history) == best + 3
    assert val_loss[best - 1] == min(val_loss) and loss[best - 1] != min(loss)


class StopAt:
    def __init__(self, epoch, by_flag):
        self.epoch, self.by_flag, self.calls, self.stop_training = epoch, by_flag, [], False

    def on_epoch_end(self, epoch, logs):
        self.calls.append(epoch)
        if epoch == self.epoch:
            if self.by_flag:
                self.stop_training = True
            else:
                return True
        return None


@pytest.mark.parametrize("by_flag", [False, True])
def test_a_callback_ends_training_after_the_epoch_it_asks_in(moons, by_flag):
    X, y = moons
    callback = StopAt(3, by_flag)
    history = micronet.fit(MLP(2, [4, 2], seed=0), X, y, epochs=10, callbacks=[callback], progress=False)
    assert callback.calls == [1, 2, 3] and history.epoch == [1, 2, 3] and not history.stopped_early


class Recorder:
    def __init__(self):
        self.calls = []

    def on_epoch_end(self, epoch, logs):
        self.calls.append(epoch)


@pytest.mark.parametrize("by_flag", [False, True])
def test_every_callback_sees_the_last_epoch_when_an_earlier_one_stops(moons, by_flag):
    X, y = moons
    first, later = StopAt(2, by_flag), Recorder()
    history = micronet.fit(MLP(2, [4, 2], seed=0), X, y, epochs=10, callbacks=[first, later], progress=False)
    assert first.calls == later.calls == [1, 2] and history.epoch == [1, 2]


def test_every_callback_sees_the_epoch_early_stopping_ends_on(moons):
    X, y = moons
    recorder = Recorder()
    history = micronet.fit(MLP(2, [4, 2], seed=0), X, y, epochs=300, lr=2.0, early_stopping=3, callbacks=[recorder],
                           seed=0, progress=False)
    assert history.stopped_early and recorder.calls == history.epoch == list(range(1, len(history) + 1))


def test_callbacks_get_a_copy_of_the_logs(moons):
    X, y = moons

    def vandal(epoch, logs):
        logs["loss"] = -1.0

    history = micronet.fit(MLP(2, [4, 2], seed=0), X, y, epochs=2, callbacks=[vandal], progress=False)
    assert all(loss > 0 for loss in history.history["loss"])


def test_an_optimizer_instance_and_a_schedule_name(moons):
    X, y = moons
    model = MLP(2, [8, 2], seed=0)
    history = micronet.fit(model, X, y, epochs=4, optimizer=Adam(model.parameters(), lr=0.01), schedule="cosine",
                           progress=False)
    lrs = history.history["lr"]
    assert lrs[0] == 0.01 and lrs == sorted(lrs, reverse=True) and lrs[-1] < 0.01


def test_eager_and_compiled_backends_give_the_same_run(moons):
    X, y = moons
    a, b = MLP(2, [8, 2], seed=0), MLP(2, [8, 2], seed=0)
    ha = micronet.fit(a, X, y, epochs=3, backend="eager", progress=False)
    hb = micronet.fit(b, X, y, epochs=3, backend="compiled", progress=False)
    assert np.allclose(weights(a), weights(b), rtol=1e-12, atol=1e-14)
    assert np.allclose(ha.history["loss"], hb.history["loss"], rtol=1e-12)


def test_a_custom_module_and_a_custom_loss(moons):
    X, y = moons

    class Linear(micronet.Module):
        def __init__(self):
            self.layer = micronet.Layer(2, 2, activation="linear", seed=0)

        def __call__(self, x):
            return self.layer(x)

    def squared_margin(logits, target):
        return (logits[1 - target] - logits[target] + 1).relu() ** 2

    history = micronet.fit(Linear(), X, y, epochs=20, loss=squared_margin, progress=False)
    assert history.history["accuracy"][-1] > 0.8


def test_fit_trains_every_parameter_of_a_model_holding_layers_in_a_dict(moons):
    X, y = moons

    class Blocks(micronet.Module):
        def __init__(self):
            self.blocks = {"a": micronet.Layer(2, 3, activation="tanh", seed=0),
                           "b": micronet.Layer(3, 2, activation="linear", seed=1)}

        def __call__(self, x):
            return self.blocks["b"](self.blocks["a"](x))

    model = Blocks()
    before = weights(model)
    assert len(before) == 9 + 8
    micronet.fit(model, X, y, epochs=2, progress=False)
    assert all(a != b for a, b in zip(weights(model), before))


@pytest.mark.parametrize(
    "change, error, message",
    [
        ({"X": np.zeros((5, 2, 1))}, ValueError, r"X must have shape \(n_samples, n_features\)"),
        ({"X": [[0.0, math.nan]] * 200}, ValueError, "X contains NaN"),
        ({"y": np.zeros(7, dtype=int)}, ValueError, "X and y must have the same number of samples, got 200 and 7"),
        ({"y": np.full(200, 2)}, ValueError, r"y holds class index 2, but the model has 2 outputs"),
        ({"y": np.full(200, -1)}, ValueError, r"class indices 0..k-1, got -1"),
        ({"y": np.full(200, 0.5)}, ValueError, "integer class indices"),
        ({"validation_split": 1.5}, ValueError, r"validation_split= must be a finite number in \[0, 1\), got 1.5"),
        ({"validation_split": 0.001}, ValueError, "validation_split=0.001 gives 1 validation sample for 2 classes"),
        ({"epochs": 0}, ValueError, "epochs= must be an int >= 1, got 0"),
        ({"batch_size": "half"}, ValueError, "batch_size= must be an int >= 1 or 'full', got 'half'"),
        ({"optimizer": "rmsprop"}, ValueError, "optimizer= must be one of sgd, adam; got 'rmsprop'"),
        ({"lr": -1.0}, ValueError, "lr= must be a finite number > 0, got -1.0"),
        ({"learning_rate": 0.1}, TypeError, "unexpected keyword argument.*learning_rate"),
        ({"loss": "nll"}, ValueError, "loss must be one of"),
        ({"backend": "gpu"}, ValueError, "backend= must be one of compiled, eager; got 'gpu'"),
        ({"early_stopping": "yes"}, TypeError, "early_stopping= must be a patience"),
    ],
)
def test_bad_arguments_are_refused_before_training(moons, change, error, message):
    X, y = moons
    model = MLP(2, [4, 2], seed=0)
    before = weights(model)
    arguments = {"X": X, "y": y, "epochs": 2, "progress": False, **change}
    with pytest.raises(error, match=message):
        micronet.fit(model, **arguments)
    assert weights(model) == before


def test_an_optimizer_instance_with_lr_is_an_error(moons):
    X, y = moons
    model = MLP(2, [4, 2], seed=0)
    with pytest.raises(ValueError, match="lr= cannot be combined with an optimizer instance"):
        micronet.fit(model, X, y, optimizer=SGD(model.parameters(), lr=0.1), lr=0.2)
    with pytest.raises(ValueError, match="must be built on model.parameters"):
        micronet.fit(model, X, y, optimizer=SGD(MLP(2, [4, 2], seed=1).parameters(), lr=0.1))


# ----- the loop with a config: early stopping survives a resume exactly ---------------------


def early_stopping_config(epochs=40):
    return parse_config({
        "dataset": {"name": "moons", "n_samples": 120, "noise": 0.3},
        "model": {"hidden": [8]},
        "optimizer": {"lr": 0.5},
        "training": {"epochs": epochs, "batch_size": 16, "validation_split": 0.25,
                     "early_stopping": {"patience": 3}},
    })


def test_a_resumed_run_continues_early_stopping_exactly():
    config = early_stopping_config()
    data = load_run_data(config)
    plan = Plan.from_config(config)

    def fresh():
        state = new_state(config, data)
        return state, make_executor(state.model, config_loss(config), "compiled", data.feature_count)

    whole, executor = fresh()
    assert run_epochs(plan, data, whole, executor) == "completed"
    whole.finish()
    assert whole.stopped_early and whole.epoch < 40
    assert whole.stopper.best_epoch < whole.epoch - 1  # so the cuts below fall on both sides of it
    for cut in (1, whole.stopper.best_epoch, whole.stopper.best_epoch + 1, whole.epoch - 1):
        first, executor = fresh()
        run_epochs(Plan(cut, plan.batch_size), data, first, executor)  # a run stopped after `cut` epochs
        saved = copy.deepcopy((first.model.state_dict(), first.to_dict()))
        second, executor = fresh()
        second.model.load_state_dict(saved[0])
        second.load_dict(saved[1])
        second.history = list(first.history)
        run_epochs(plan, data, second, executor)
        second.finish()
        assert without_seconds(second.history) == without_seconds(whole.history)
        assert weights(second.model) == weights(whole.model)
        assert (second.epoch, second.stopped_early, second.stopper.best_epoch) == (
            whole.epoch, True, whole.stopper.best_epoch)


def test_a_stopped_run_does_not_train_again():
    config = early_stopping_config()
    data = load_run_data(config)
    state = new_state(config, data)
    executor = make_executor(state.model, config_loss(config), "compiled", data.feature_count)
    run_epochs(Plan.from_config(config), data, state, executor)
    before, epoch = weights(state.model), state.epoch
    assert run_epochs(Plan.from_config(config), data, state, executor) == "completed"
    assert weights(state.model) == before and state.epoch == epoch


def test_a_checkpoint_without_early_stopping_state_does_not_fit_a_config_with_it():
    config = early_stopping_config()
    data = load_run_data(config)
    state = new_state(config, data)
    plain = TrainState(state.model, state.optimizer, state.schedule, state.shuffle_rng)
    with pytest.raises(ValueError, match="early-stopping state does not match"):
        state.load_dict(plain.to_dict())


# ----- scores ------------------------------------------------------------------------


def test_regression_scores_mae_in_original_units_and_r2():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    predicted = np.array([[0.5], [1.0], [2.0], [2.5]])
    scaler = Standardizer([100.0], [10.0])  # the model works in standardised units
    scores = score("regression", predicted, y, scaler)
    assert scores["mae"] == pytest.approx(0.25 * 10.0)
    assert scores["r2"] == pytest.approx(1 - 0.5 / 5.0)


def test_r2_of_a_constant_target_is_one_when_exact_and_zero_otherwise():
    y = np.array([[2.0, 1.0], [2.0, 3.0]])
    assert score("regression", np.array([[2.0, 1.0], [2.0, 3.0]]), y)["r2"] == 1.0
    assert score("regression", np.array([[2.5, 1.0], [2.0, 3.0]]), y)["r2"] == 0.5  # mean of 0 and 1


def test_classification_score_is_accuracy():
    logits = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    # predicted 0, 1, 0: recalls 1 and 1/2 (balanced 3/4); F1 2/3 for each class (precision 1/2 and 1)
    assert score("classification", logits, np.array([0, 1, 1])) == pytest.approx(
        {"accuracy": 2 / 3, "balanced_accuracy": 0.75, "f1_macro": 2 / 3})


def test_fit_works_on_a_prepared_data_like_object_without_test_split(moons):
    X, y = moons
    data = PreparedData(X, y, X[:0], y[:0], [0, 1], 2, None)
    config = parse_config({"model": {"hidden": [4]}, "training": {"epochs": 2}})
    state = new_state(config, data)
    run_epochs(Plan.from_config(config), data, state, make_executor(state.model, config_loss(config), "eager", 2))
    assert set(state.history[-1]) == {"epoch", "train_loss", "train_accuracy", "train_balanced_accuracy",
                                      "train_f1_macro", "lr", "seconds"}


def test_a_cosine_schedule_spans_the_run_when_built_by_name(moons):
    X, y = moons
    model = MLP(2, [4, 2], seed=0)
    history = micronet.fit(model, X, y, epochs=5, schedule="cosine", progress=False)
    opt = SGD(MLP(2, [4, 2], seed=0).parameters(), lr=0.1)
    reference = CosineSchedule(opt, T_max=5)
    assert history.history["lr"] == [reference.lr_at(t) for t in range(5)]


# ----- regression through micronet.fit -----------------------------------------------------


def test_fit_with_a_regression_loss_fits_a_curve_and_logs_mae_and_r2():
    rng = np.random.default_rng(0)
    X = rng.uniform(-np.pi, np.pi, size=(200, 1))
    y = np.sin(X[:, 0]) + rng.normal(0, 0.05, size=200)
    model = MLP(1, [16, 16, 1], activation="tanh", seed=0)
    history = micronet.fit(model, X, y, loss="mse", optimizer="adam", lr=0.02, epochs=100, validation_split=0.2,
                           seed=0, progress=False)
    assert set(history.history) == {"loss", "mae", "r2", "val_loss", "val_mae", "val_r2", "lr"}
    assert history.history["val_r2"][-1] > 0.95
    predicted = micronet.predict(model, X, task="regression")
    assert predicted.shape == (200,) and np.mean(np.abs(predicted - y)) < 0.15


@pytest.mark.parametrize("loss", ["l1", "huber"])
def test_fit_fits_several_targets_with_any_regression_loss(loss):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5], X[:, 0] - X[:, 2]])
    model = micronet.Layer(3, 2, activation="linear", seed=0)  # a linear model: the targets are linear
    history = micronet.fit(model, X, Y, loss=loss, optimizer="adam", lr=0.05, epochs=80, seed=0, progress=False)
    assert history.history["r2"][-1] > 0.95


def test_a_regression_target_of_the_wrong_width_is_named():
    X, Y = np.zeros((10, 2)), np.zeros((10, 3))
    with pytest.raises(ValueError, match=r"y has 3 target column\(s\), but the model has 1 outputs"):
        micronet.fit(MLP(2, [1], seed=0), X, Y, loss="mse", progress=False)
