"""MicronetClassifier in scikit-learn's own tooling."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_moons
from sklearn.exceptions import NotFittedError
from sklearn.inspection import DecisionBoundaryDisplay
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from micronet.nn import MLP
from micronet.sklearn import MicronetClassifier


@parametrize_with_checks([MicronetClassifier(epochs=20)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)  # every check passes: none is marked as an expected failure


@pytest.fixture(scope="module")
def moons():
    return make_moons(200, noise=0.1, random_state=0)


def test_fit_sets_the_fitted_attributes(moons):
    X, y = moons
    clf = MicronetClassifier(hidden=(8,), epochs=15, random_state=0).fit(X, y)
    assert clf.classes_.tolist() == [0, 1] and clf.n_features_in_ == 2
    assert len(clf.loss_curve_) == clf.n_iter_ == 15
    assert isinstance(clf.model_, MLP) and len(clf.model_.parameters()) == (2 + 1) * 8 + (8 + 1) * 2
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]


def test_string_labels_and_probabilities():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = make_pipeline(StandardScaler(), MicronetClassifier(epochs=40, random_state=1)).fit(X, names)
    proba = clf.predict_proba(X)
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(axis=1)] == clf.predict(X)).all()
    assert set(clf.predict(X)) <= set(names) and clf.score(X, names) > 0.9


def test_same_random_state_same_model(moons):
    X, y = moons
    a = MicronetClassifier(epochs=5, random_state=3).fit(X, y)
    b = MicronetClassifier(epochs=5, random_state=3).fit(X, y)
    c = MicronetClassifier(epochs=5, random_state=4).fit(X, y)
    data = lambda clf: [p.data for p in clf.model_.parameters()]  # noqa: E731
    assert data(a) == data(b) and data(a) != data(c)


def test_partial_fit_runs_one_more_epoch(moons):
    X, y = moons
    clf = MicronetClassifier(epochs=3, random_state=0)
    clf.partial_fit(X, y, classes=[0, 1])
    clf.partial_fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="labels not seen in classes_"):
        clf.partial_fit(X, y + 5)


@pytest.mark.parametrize(
    "X, y, message",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), [0, 1], "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0]]), [0, 1], "infinity"),
        (np.zeros((4, 2)), [1, 1, 1, 1], "at least 2 classes"),
        (np.zeros((4, 2)), [0.1, 0.2, 0.3, 0.4], "Unknown label type"),
        (np.zeros(4), [0, 1, 0, 1], "2D array"),
    ],
)
def test_bad_input_raises_value_error(X, y, message):
    with pytest.raises(ValueError, match=message):
        MicronetClassifier(epochs=2).fit(X, y)


def test_bad_hyper_parameters_are_named_at_fit():
    X, y = make_moons(20, random_state=0)
    with pytest.raises(ValueError, match="optimizer.lr must be a finite number > 0, got -1.0"):
        MicronetClassifier(lr=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="model.activation must be one of"):
        MicronetClassifier(activation="gelu").fit(X, y)


def test_predict_before_fit_and_wrong_feature_count(moons):
    X, y = moons
    with pytest.raises(NotFittedError):
        MicronetClassifier().predict(X)
    clf = MicronetClassifier(epochs=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((3, 5)))


def test_pipeline_cross_validation_grid_search_and_clone(moons):
    X, y = moons
    pipe = make_pipeline(StandardScaler(), MicronetClassifier(hidden=(16,), epochs=30, random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() > 0.85
    search = GridSearchCV(pipe, {"micronetclassifier__lr": [0.01, 0.1]}, cv=2).fit(X, y)
    assert search.best_params_["micronetclassifier__lr"] in (0.01, 0.1)
    copy = clone(search.best_estimator_)
    assert copy.get_params()["micronetclassifier__lr"] == search.best_params_["micronetclassifier__lr"]
    assert not hasattr(copy[-1], "model_")


def test_decision_boundary_display_from_estimator(moons, tmp_path):
    X, y = moons
    clf = MicronetClassifier(epochs=20, random_state=0).fit(X, y)
    display = DecisionBoundaryDisplay.from_estimator(clf, X, response_method="predict_proba")
    assert display.response.shape == display.xx0.shape
    assert 0.0 <= display.response.min() and display.response.max() <= 1.0
    display.figure_.savefig(tmp_path / "boundary.png")
    assert (tmp_path / "boundary.png").stat().st_size > 5_000


def test_eager_and_compiled_backends_agree(moons):
    X, y = moons
    compiled = MicronetClassifier(epochs=3, random_state=0).fit(X, y)
    eager = MicronetClassifier(epochs=3, random_state=0, backend="eager").fit(X, y)
    assert compiled.loss_curve_ == pytest.approx(eager.loss_curve_, rel=1e-12)
