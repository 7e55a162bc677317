"""micronet as a scikit-learn classifier, for Pipelines, grid searches and CV.

`MicronetClassifier` stores its hyper-parameters untouched (scikit-learn's
contract), turns them into the same validated run config the CLI uses when
`fit` is called, and trains with the trainer's own loop (`micronet.train.fit`),
so the estimator and `python -m micronet.train` cannot drift apart.
"""

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from micronet.config import parse_config
from micronet.data import PreparedData
from micronet.losses import LOSSES
from micronet.train import fit, make_executor, new_state

__all__ = ["MicronetClassifier"]


class MicronetClassifier(ClassifierMixin, BaseEstimator):
    """A multilayer perceptron trained by micronet, with scikit-learn's estimator API.

    Parameters mirror the run config (docs/config.md): `hidden` widths,
    `activation` (relu, tanh, sigmoid), `loss` (cross_entropy, hinge, mse),
    `optimizer` (sgd, adam) with `lr`, `momentum` (sgd only), `weight_decay`,
    and `epochs`, `batch_size` (int or "full"), `shuffle`, `backend`
    (compiled, eager). `random_state` seeds initialisation and shuffling.
    Inputs are used as given: put a StandardScaler in front in a Pipeline.

    Fitted attributes: `classes_`, `n_features_in_`, `model_` (a
    micronet.nn.MLP), `loss_curve_` (mean training loss per epoch) and
    `n_iter_` (epochs run). `predict_proba` is the softmax of the logits
    (for the hinge and mse losses it is a confidence score, not calibrated).
    """

    def __init__(
        self,
        hidden=(16, 16),
        activation="relu",
        loss="cross_entropy",
        optimizer="sgd",
        lr=0.1,
        momentum=0.9,
        weight_decay=0.0,
        epochs=100,
        batch_size=32,
        shuffle=True,
        backend="compiled",
        random_state=None,
    ):
        self.hidden = hidden
        self.activation = activation
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.backend = backend
        self.random_state = random_state

    def _config(self, epochs):
        """The run config for these parameters; bad values raise ValueError naming them."""
        seed = self.random_state
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            seed = int(check_random_state(seed).randint(0, 2**32 - 1))
        optimizer = {"name": self.optimizer, "lr": self.lr, "weight_decay": self.weight_decay}
        if self.optimizer == "sgd":
            optimizer["momentum"] = self.momentum
        return parse_config(
            {
                "name": "sklearn",
                "seed": seed,
                "model": {"hidden": list(self.hidden), "activation": self.activation},
                "loss": self.loss,
                "optimizer": optimizer,
                "training": {
                    "epochs": epochs,
                    "batch_size": self.batch_size,
                    "shuffle": self.shuffle,
                    "backend": self.backend,
                },
            }
        )

    def fit(self, X, y):
        """Train from scratch for `epochs` epochs; returns self."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        self._start(X, y, np.unique(y), "MicronetClassifier needs at least 2 classes in y")
        self._train(self._config(self.epochs))
        return self

    def partial_fit(self, X, y, classes=None):
        """One more epoch on (X, y); the first call needs `classes` unless y holds them all."""
        first = not hasattr(self, "model_")
        X, y = validate_data(self, X, y, dtype=np.float64, reset=first)
        if first:
            check_classification_targets(y)
        known = np.unique(y if classes is None else classes) if first else self.classes_
        unknown = np.setdiff1d(y, known)
        if len(unknown):
            raise ValueError(f"y has labels not seen in classes_: {unknown.tolist()!r}")
        if first:
            self._start(X, y, known, "partial_fit needs at least 2 classes: pass classes=[...] on the first call")
        self._data = _training_data(X, np.searchsorted(self.classes_, y), self.classes_)
        self._train(self._config(self._state.epoch + 1))
        return self

    def _start(self, X, y, classes, too_few):
        """A fresh model and training state for these classes (fit, or partial_fit's first call)."""
        if len(classes) < 2:
            raise ValueError(f"{too_few}, got {len(classes)} class: {classes!r}")
        self.classes_ = classes
        self._data = _training_data(X, np.searchsorted(classes, y), classes)
        self._state = new_state(self._config(self.epochs), self._data)
        self.model_ = self._state.model
        self._executor = None

    def _train(self, config):
        executor = self._get_executor()
        status = fit(config, self._data, self._state, executor)
        if status != "completed":  # fit only stops early on a stop request, which we never make
            raise RuntimeError(f"training ended early: {status}")
        self.loss_curve_ = [row["train_loss"] for row in self._state.history]
        self.n_iter_ = self._state.epoch

    def _get_executor(self):
        if getattr(self, "_executor", None) is None:
            self._executor = make_executor(
                self.model_, LOSSES[self.loss], self.backend, self.n_features_in_, warn=lambda message: None
            )
        return self._executor

    def _logits(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._get_executor().logits(X)

    def decision_function(self, X):
        """Logits, one column per class; for two classes, one score (> 0 means classes_[1])."""
        logits = self._logits(X)
        return logits[:, 1] - logits[:, 0] if len(self.classes_) == 2 else logits

    def predict_proba(self, X):
        """Softmax of the logits: rows sum to 1, columns follow `classes_`."""
        logits = self._logits(X)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The label in `classes_` with the largest logit."""
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def __getstate__(self):
        # The compiled executor holds traced closures; it is rebuilt on demand.
        state = self.__dict__.copy()
        state["_executor"] = None
        return state


def _training_data(X, y_index, classes):
    """The trainer's data object for a training set with no test split."""
    empty = X[:0]
    return PreparedData(X, y_index.astype(np.int64), empty, y_index[:0], list(classes), X.shape[1], None)
