"""micronet as scikit-learn estimators, for Pipelines, grid searches and CV.

`MicronetClassifier` and `MicronetRegressor` store their hyper-parameters
untouched (scikit-learn's contract), turn them into the same validated run
config the CLI uses when `fit` is called, and train with the one training
loop (`micronet.loop.run_epochs`), so the estimators and `python -m
micronet.train` cannot drift apart. Stopping follows scikit-learn's
`MLPClassifier`: without `early_stopping`, training ends once the training
loss has not improved by `tol` for `n_iter_no_change` epochs; with it, a
`validation_fraction` is held out and its score (accuracy, or R²) decides,
and the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from micronet.config import parse_config
from micronet.data import PreparedData, Standardizer, split_validation
from micronet.defaults import SETTINGS, default
from micronet.epochs import Diverged, run_epochs
from micronet.executors import make_executor
from micronet.losses import TASKS
from micronet.nn import Module
from micronet.optim import OPTIMIZERS
from micronet.options import Choice, Flag, Integer, Option, Real, check_options
from micronet.predict import softmax
from micronet.state import Plan, config_loss, new_state

__all__ = ["MicronetClassifier", "MicronetRegressor"]

_FITTED = ("classes_", "model_", "loss_curve_", "n_iter_", "best_loss_", "validation_scores_",
           "best_validation_score_", "target_scaler_", "n_outputs_")


# Each optimizer option is a parameter (None: the chosen optimizer's default), declared once, in micronet.optim.
OPTIMIZER_PARAMETERS = ("lr", "momentum", "nesterov", "betas", "eps", "weight_decay")
# The settings of the defaults table that are parameters here, by parameter name.
_SETTINGS = {s.estimator: s for s in SETTINGS.values() if s.estimator is not None}
# The estimators' own parameters: MLPClassifier's stopping rule.
_STOPPING = {
    "early_stopping": Option(Flag(), False, "hold out validation_fraction and stop on its score"),
    "validation_fraction": Option(Real(0.0, 1.0, low_open=True, high_open=True), 0.1,
                                  "the fraction held out with early_stopping"),
    "n_iter_no_change": Option(Integer(1), 10, "epochs without improvement by tol before stopping"),
    "tol": Option(Real(0.0), 1e-4, "how much an epoch must improve on the best"),
}


def _validated(estimator: BaseEstimator, X: ArrayLike, y: ArrayLike, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's validate_data for (X, y), with the types it returns (scikit-learn has no annotations)."""
    return validate_data(estimator, X, y, **options)


class _NoImprovement:
    """scikit-learn's MLP stopping rule, as a loop callback.

    Counts epochs whose score fails to beat the best by `tol` (the training
    loss, or the validation score with early stopping) and stops once the
    count exceeds `n_iter_no_change`. With early stopping it also keeps the
    best validation epoch's weights, which `restore` puts back.
    """

    def __init__(self, estimator, model, validation_key):
        self.tol, self.patience = estimator.tol, estimator.n_iter_no_change
        self.model, self.key = model, validation_key
        self.count, self.best_loss, self.best_score = 0, np.inf, -np.inf
        self.scores, self.best_weights = [], None

    def on_epoch_end(self, epoch, logs):
        if self.key is None:
            loss = logs["loss"]
            self.count = self.count + 1 if loss > self.best_loss - self.tol else 0
            self.best_loss = min(self.best_loss, loss)
        else:
            score = logs[self.key]
            self.scores.append(score)
            self.count = self.count + 1 if score < self.best_score + self.tol else 0
            if score > self.best_score:
                self.best_score, self.best_weights = score, self.model.state_dict()
        return self.count > self.patience

    def restore(self):
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


class _MicronetEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameters, the config, the loop."""

    _task = ""

    def __init__(
        self,
        hidden: Sequence[int] = SETTINGS["hidden"].option.default,
        activation: str = SETTINGS["activation"].option.default,
        loss: str | None = None,
        optimizer: str | None = None,
        lr: float | None = None,
        momentum: float | None = None,
        nesterov: bool | None = None,
        betas: tuple[float, float] | None = None,
        eps: float | None = None,
        weight_decay: float | None = None,
        epochs: int = SETTINGS["epochs"].option.default,
        batch_size: int | str = SETTINGS["batch_size"].option.default,
        shuffle: bool = SETTINGS["shuffle"].option.default,
        backend: str = SETTINGS["backend"].option.default,
        early_stopping: bool = _STOPPING["early_stopping"].default,
        validation_fraction: float = _STOPPING["validation_fraction"].default,
        n_iter_no_change: int = _STOPPING["n_iter_no_change"].default,
        tol: float = _STOPPING["tol"].default,
        module: Callable[[int, int], Module] | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.backend = backend
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.module = module
        self.random_state = random_state

    # ----- configuration --------------------------------------------------

    def _config(self, epochs):
        """The run config for these parameters; a bad value raises an error naming the parameter.

        Each parameter is checked by the rule the config and `micronet.fit` use, worded with the
        parameter's own name, so the config never sees a value it would refuse in its own words.
        """
        task = self._task
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            seed = int(check_random_state(seed).randint(0, 2**32 - 1))
        settings = {name: setting.option.rule(getattr(self, name), name)
                    for name, setting in _SETTINGS.items() if name not in ("random_state", "loss", "optimizer")}
        for name, option in _STOPPING.items():
            option.rule(getattr(self, name), name)
        optimizer = SETTINGS["optimizer"].option.rule(
            default("optimizer", task) if self.optimizer is None else self.optimizer, "optimizer")
        cls = OPTIMIZERS[optimizer]
        given = {name: getattr(self, name) for name in OPTIMIZER_PARAMETERS if getattr(self, name) is not None}
        values = check_options(cls.options, given, str, f"optimizer {optimizer!r}")
        cls.check_together(values, str)
        loss = Choice(TASKS[task])(default("loss", task) if self.loss is None else self.loss, "loss")
        return parse_config(
            {
                "name": "sklearn",
                "seed": seed,
                "task": task,
                "model": {"hidden": settings["hidden"], "activation": settings["activation"]},
                "loss": loss,
                "optimizer": {"name": optimizer, **values},
                "training": {
                    "epochs": epochs,
                    "batch_size": settings["batch_size"],
                    "shuffle": settings["shuffle"],
                    "backend": settings["backend"],
                },
            }
        )

    def _build_model(self, config, data):
        """The model to train: a fresh MLP, or the user's `module` (copied, or built by the callable)."""
        if self.module is None:
            return None
        if isinstance(self.module, Module):
            model = copy.deepcopy(self.module)  # fit never changes a parameter (scikit-learn's rule)
        elif callable(self.module):
            model = self.module(data.feature_count, data.n_outputs)
        else:
            raise ValueError(f"module must be a micronet Module or a callable (n_features, n_outputs) -> Module, "
                             f"got {type(self.module).__name__}")
        if not isinstance(model, Module):
            raise ValueError(f"module(n_features, n_outputs) must return a micronet Module, got {type(model).__name__}")
        try:
            outputs = model([0.0] * data.feature_count)
        except (TypeError, ValueError) as e:
            raise ValueError(f"module cannot take {data.feature_count} features: {e}") from None
        if not isinstance(outputs, (list, tuple)) or len(outputs) != data.n_outputs:
            got = len(outputs) if isinstance(outputs, (list, tuple)) else type(outputs).__name__
            raise ValueError(f"module must return {data.n_outputs} outputs for this data, got {got}")
        return model

    # ----- training -------------------------------------------------------

    def _fit(self, X, y, classes=None):
        """Train from scratch on validated arrays; the estimator counts as fitted only on success."""
        for name in _FITTED:
            self.__dict__.pop(name, None)
        config = self._config(self.epochs)
        X_val = y_val = None
        if self.early_stopping:
            stratify = self._task == "classification"
            X, y, X_val, y_val = split_validation(X, y, self.validation_fraction, config.seed, stratify,
                                                  name="validation_fraction")
        target_scaler = self._target_scaler(y)
        data = self._prepared(X, y, X_val, y_val, classes, target_scaler)
        state = new_state(config, data, model=self._build_model(config, data))
        key = None if not self.early_stopping else "val_accuracy" if self._task == "classification" else "val_r2"
        stopper = _NoImprovement(self, state.model, key)
        executor = self._make_executor(state.model, config, data.feature_count)
        run_epochs(Plan.from_config(config), data, state, executor, callbacks=[stopper])  # Diverged propagates
        stopper.restore()
        self._state, self._data, self._executor = state, data, executor
        self.model_ = state.model
        self.loss_curve_ = [row["train_loss"] for row in state.history]
        self.n_iter_ = state.epoch
        self.best_loss_ = None if self.early_stopping else stopper.best_loss
        self.validation_scores_ = stopper.scores if self.early_stopping else None
        self.best_validation_score_ = stopper.best_score if self.early_stopping else None
        self.target_scaler_ = target_scaler
        if classes is not None:
            self.classes_ = classes
        self.n_outputs_ = data.n_outputs
        return self

    def _target_scaler(self, y):
        return None

    def _prepared(self, X, y, X_val, y_val, classes, target_scaler):
        """The loop's data object: a training split, an optional validation split, no test split."""
        if target_scaler is not None:
            y = target_scaler.transform(y)
            y_val = None if y_val is None else target_scaler.transform(y_val)
        return PreparedData(
            X, y, X[:0], y[:0], None if classes is None else list(classes), X.shape[1], None,
            X_val=X_val, y_val=y_val, task=self._task, target_scaler=target_scaler,
        )

    def _make_executor(self, model, config, n_features):
        return make_executor(model, config_loss(config), self.backend, n_features)

    def _train_more(self, X, y):
        """One more epoch on (X, y) with the existing model and optimizer state (partial_fit)."""
        data = self._prepared(X, y, None, None, getattr(self, "classes_", None), self.target_scaler_)
        config = self._config(self._state.epoch + 1)
        try:
            run_epochs(Plan.from_config(config), data, self._state, self._executor)
        except Diverged:
            for name in _FITTED:
                self.__dict__.pop(name, None)
            raise
        self.loss_curve_ = [row["train_loss"] for row in self._state.history]
        self.n_iter_ = self._state.epoch

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")  # n_features_in_ is set before training, so it does not count

    def _outputs(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        if self._executor is None:  # after unpickling
            self._executor = self._make_executor(self.model_, self._config(self.epochs), self.n_features_in_)
        return self._executor.logits(X)

    def __getstate__(self):
        # The compiled executor holds traced programs; it is rebuilt on demand.
        state = self.__dict__.copy()
        state["_executor"] = None
        return state


class MicronetClassifier(ClassifierMixin, _MicronetEstimator):
    """A neural-net classifier trained by micronet, with scikit-learn's estimator API.

    Parameters mirror the run config, with the same defaults (docs/config.md's
    table): `hidden` widths, `activation` (one of
    `micronet.config.HIDDEN_ACTIVATIONS`), `loss`
    (None: cross_entropy; hinge, mse), `optimizer` (None: sgd; adam) with
    its options `lr`, `momentum`, `nesterov`, `betas`, `eps`, `weight_decay`
    (None: that optimizer's default; one it does not take is an error),
    `epochs` (the most epochs to run), `batch_size` (int or "full"),
    `shuffle`, `backend` (compiled, eager). Stopping:
    `early_stopping`, `validation_fraction`, `n_iter_no_change` and `tol`
    mean what they mean for scikit-learn's `MLPClassifier`. `module` puts a
    micronet Module of your own (or a callable `(n_features, n_classes) ->
    Module`) in place of the MLP. `random_state` seeds initialisation,
    shuffling and the validation split. Inputs are used as given: put a
    StandardScaler in front in a Pipeline.

    Fitted attributes: `classes_`, `n_features_in_`, `model_`, `loss_curve_`
    (mean training loss per epoch), `n_iter_` (epochs run), `best_loss_`,
    `validation_scores_` and `best_validation_score_` (with early stopping).
    `predict_proba` is the softmax of the outputs (for the hinge and mse
    losses a confidence score, not calibrated).
    """

    _task = "classification"

    def fit(self, X: ArrayLike, y: ArrayLike) -> MicronetClassifier:
        """Train from scratch for up to `epochs` epochs; returns self."""
        X, y = _validated(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"MicronetClassifier needs at least 2 classes in y, got {len(classes)} class: {classes!r}")
        return self._fit(X, np.searchsorted(classes, y).astype(np.int64), classes)

    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None) -> MicronetClassifier:
        """One more epoch on (X, y); the first call needs `classes` unless y holds them all."""
        first = not hasattr(self, "model_")
        X, y = _validated(self, X, y, dtype=np.float64, reset=first)
        if first:
            check_classification_targets(y)
        known = np.unique(y if classes is None else classes) if first else self.classes_
        unknown = np.setdiff1d(y, known)
        if len(unknown):
            raise ValueError(f"y has labels not seen in classes_: {unknown.tolist()!r}")
        index = np.searchsorted(known, y).astype(np.int64)
        if first:
            if len(known) < 2:
                raise ValueError(
                    f"partial_fit needs at least 2 classes: pass classes=[...] on the first call, got {known!r}"
                )
            self._start_partial(X, index, known)
        self._train_more(X, index)
        return self

    def _start_partial(self, X, y, classes):
        config = self._config(1)
        data = self._prepared(X, y, None, None, classes, None)
        state = new_state(config, data, model=self._build_model(config, data))
        self._state, self._executor = state, self._make_executor(state.model, config, X.shape[1])
        self.classes_, self.model_, self.target_scaler_ = classes, state.model, None
        self.best_loss_ = self.validation_scores_ = self.best_validation_score_ = None
        self.n_outputs_ = len(classes)

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Outputs, one column per class; for two classes, one score (> 0 means classes_[1])."""
        logits = self._outputs(X)
        return logits[:, 1] - logits[:, 0] if logits.shape[1] == 2 else logits

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Softmax of the outputs: rows sum to 1, columns follow `classes_`."""
        return softmax(self._outputs(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The label in `classes_` with the largest output."""
        outputs = self._outputs(X)
        return self.classes_[np.argmax(outputs, axis=1)]


class MicronetRegressor(RegressorMixin, _MicronetEstimator):
    """A neural-net regressor trained by micronet, with scikit-learn's estimator API.

    The parameters are `MicronetClassifier`'s, with regression losses
    (`loss` None: mse; l1, huber), Adam by default as for every regression
    (a squared error's gradients grow with the inputs, and Adam's steps do
    not), and `standardize_target` (default True):
    the targets are scaled with the training statistics while training and
    predictions come back in the original units, since an SGD step on raw
    targets of size 100 is a different problem from one of size 1.
    `early_stopping` validates on R², as `MLPRegressor` does. Targets may be
    1-d or 2-d (one output per column); `score` is R².
    """

    _task = "regression"

    def __init__(
        self,
        hidden: Sequence[int] = SETTINGS["hidden"].option.default,
        activation: str = SETTINGS["activation"].option.default,
        loss: str | None = None,
        optimizer: str | None = None,
        lr: float | None = None,
        momentum: float | None = None,
        nesterov: bool | None = None,
        betas: tuple[float, float] | None = None,
        eps: float | None = None,
        weight_decay: float | None = None,
        epochs: int = SETTINGS["epochs"].option.default,
        batch_size: int | str = SETTINGS["batch_size"].option.default,
        shuffle: bool = SETTINGS["shuffle"].option.default,
        backend: str = SETTINGS["backend"].option.default,
        early_stopping: bool = _STOPPING["early_stopping"].default,
        validation_fraction: float = _STOPPING["validation_fraction"].default,
        n_iter_no_change: int = _STOPPING["n_iter_no_change"].default,
        tol: float = _STOPPING["tol"].default,
        module: Callable[[int, int], Module] | None = None,
        standardize_target: bool = True,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        super().__init__(hidden, activation, loss, optimizer, lr, momentum, nesterov, betas, eps, weight_decay,
                         epochs, batch_size, shuffle, backend, early_stopping, validation_fraction, n_iter_no_change,
                         tol, module, random_state)
        self.standardize_target = standardize_target

    def __sklearn_tags__(self) -> Any:  # sklearn.utils.Tags
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True  # a 2-d y trains one output per column
        return tags

    def fit(self, X: ArrayLike, y: ArrayLike) -> MicronetRegressor:
        """Train from scratch for up to `epochs` epochs; returns self."""
        X, y = _validated(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True)
        return self._fit(X, y)

    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> MicronetRegressor:
        """One more epoch on (X, y); the first call also fits the target scaling."""
        first = not hasattr(self, "model_")
        X, y = _validated(self, X, y, dtype=np.float64, multi_output=True, y_numeric=True, reset=first)
        if first:
            config = self._config(1)
            scaler = self._target_scaler(y)
            data = self._prepared(X, y, None, None, None, scaler)
            state = new_state(config, data, model=self._build_model(config, data))
            self._state, self._executor = state, self._make_executor(state.model, config, X.shape[1])
            self.model_, self.target_scaler_, self.n_outputs_ = state.model, scaler, data.n_outputs
            self.best_loss_ = self.validation_scores_ = self.best_validation_score_ = None
            self._y_ndim = y.ndim
        elif (1 if y.ndim == 1 else y.shape[1]) != self.n_outputs_:
            raise ValueError(f"y has {1 if y.ndim == 1 else y.shape[1]} target column(s), the model {self.n_outputs_}")
        self._train_more(X, y)
        return self

    def _fit(self, X, y, classes=None):
        self._y_ndim = y.ndim
        return super()._fit(X, y)

    def _target_scaler(self, y):
        return Standardizer().fit(y) if Flag()(self.standardize_target, "standardize_target") else None

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions in the targets' original units: 1-d for a 1-d target, else one column per output."""
        outputs = self._outputs(X)
        if self.target_scaler_ is not None:
            outputs = self.target_scaler_.inverse_transform(outputs)
        return outputs[:, 0] if self._y_ndim == 1 else outputs
