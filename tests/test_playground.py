"""The playground's server, driven through Starlette's TestClient: every request treated as hostile.

What a broken server would get wrong: accept a setup the trainer refuses or
a limit it should not, change a session on a refused request, take a
request from another origin or host, serve a file beyond its own three,
keep more sessions than allowed, keep training a forgotten tab, or export a
config that `micronet-train` does not turn into the very same run.
"""

import asyncio
import base64
import builtins
import csv
import io
import json
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # starlette >= 1.9 prefers httpx2 but still takes httpx, which older ones need
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from micronet.config import HIDDEN_ACTIVATIONS, ConfigError, config_to_dict, parse_config
from micronet.data import DATASETS
from micronet.losses import TASKS as TASK_LOSSES
from micronet.palette import CLASS_COLORS, NEGATIVE, POSITIVE
from micronet.playground import cli
from micronet.playground.server import create_app
from micronet.playground.sessions import Sessions
from micronet.playground.trainer import (
    CONTROLS,
    DATASET_NAMES,
    GRID,
    THUMB,
    SetupError,
    Trainer,
    in_page_words,
    options,
    setup_to_config,
)

ORIGIN = {"Origin": "http://testserver"}
SMALL = {  # a quick setup: small data, small net
    "seed": 3,
    "dataset": {"name": "moons", "n_samples": 120, "noise": 0.1, "test_size": 0.25},
    "model": {"hidden": [6], "activation": "tanh"},
    "loss": "cross_entropy",
    "optimizer": {"name": "sgd", "lr": 0.1},
    "training": {"batch_size": 16},
}


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def client():
    with TestClient(create_app(["testserver"])) as c:
        yield c


def new_session(client, setup=SMALL):
    r = client.post("/api/sessions", json=setup, headers=ORIGIN)
    assert r.status_code == 201, r.text
    return r.json()["session"]


def state(client, sid):
    r = client.get(f"/api/sessions/{sid}")
    assert r.status_code == 200, r.text
    return r.json()


def until(predicate, timeout=30.0):
    """Poll until predicate() is true; fail after `timeout` seconds (a bound, not a measurement)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ----- setups become validated configs ----------------------------------------


def test_setup_fixes_what_makes_an_export_reproducible():
    config = setup_to_config(SMALL)
    assert config.optimizer.schedule.name == "constant"
    assert config.training.backend == "compiled"
    assert config.training.validation_split == 0.0 and config.training.early_stopping is None
    assert config.dataset.n_samples == 120 and config.model.hidden == [6] and config.seed == 3


@pytest.mark.parametrize("setup, message", [
    ({"dataset": {"name": "moons", "n_samples": 2001}}, r"dataset.n_samples must be <= 2000 in the playground, got 2001"),
    ({"model": {"hidden": [4] * 7}}, r"model.hidden must have at most 6 layers in the playground, got 7"),
    ({"model": {"hidden": [4, 33]}}, r"model.hidden\[1\] must be at most 32 in the playground, got 33"),
    ({"dataset": {"name": "iris"}}, r"dataset.name must be one of moons, circles, blobs, xor, spiral, sine .*got 'iris'"),
    ({"dataset": {"name": "csv", "path": "/etc/passwd"}}, r"unknown setting dataset.'path'"),
    ({"training": {"epochs": 5}}, r"unknown setting training.'epochs'; training takes: batch_size"),
    ({"name": "x"}, r"unknown setting 'name'"),
    ({"optimizer": "adam"}, r"optimizer must be an object with keys name, lr"),
    ([1, 2], r"the setup must be a JSON object"),
])
def test_the_playground_limits_are_refused_with_a_message(setup, message):
    with pytest.raises(SetupError, match=message):
        setup_to_config(setup)


def test_the_largest_allowed_setup_is_accepted():
    config = setup_to_config({"dataset": {"name": "spiral", "n_samples": 2000}, "model": {"hidden": [32] * 6}})
    assert config.dataset.n_samples == 2000 and config.model.hidden == [32] * 6


@pytest.mark.parametrize("setup, message", [
    ({"optimizer": {"name": "sgd", "lr": -1}}, r"optimizer.lr must be a finite number > 0, got -1"),
    ({"model": {"hidden": [0]}}, r"model.hidden\[0\] must be an int >= 1, got 0"),
    ({"seed": -1}, r"seed must be an int in \[0, 4294967295\], got -1"),
    ({"dataset": {"name": "blobs", "noise": 0.1}}, r"dataset.noise does not apply to dataset 'blobs'"),
])
def test_everything_else_is_parse_configs_word(setup, message):
    with pytest.raises(ConfigError, match=message):
        setup_to_config(setup)


ALL_LOSSES = sorted({name for registry in TASK_LOSSES.values() for name in registry})


@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_the_page_offers_and_accepts_exactly_the_losses_the_trainer_takes_for_a_dataset(dataset):
    """For every loss of any task: the page lists it, the playground accepts it and micronet-train does, or none."""
    offered = options()["datasets"][dataset]["losses"]
    for loss in ALL_LOSSES:
        try:
            parse_config({"dataset": dataset, "task": DATASETS[dataset].task, "loss": loss})
            trainer_takes = True
        except ConfigError:
            trainer_takes = False
        try:
            config = setup_to_config({"dataset": {"name": dataset}, "loss": loss})
            assert (config.task, config.loss.name) == (DATASETS[dataset].task, loss)
            playground_takes = True
        except SetupError as e:
            assert "task" not in str(e)
            playground_takes = False
        assert (loss in offered) == playground_takes == trainer_takes, (dataset, loss)
    assert options()["datasets"][dataset]["task"] == DATASETS[dataset].task


def test_mse_on_moons_is_classification_as_in_the_trainer():
    config = setup_to_config({**SMALL, "loss": "mse"})
    assert (config.task, config.loss.name) == ("classification", "mse")
    assert parse_config(config_to_dict(config)) == config  # the export says task: classification
    trainer = Trainer(config)
    trainer.train_epoch()
    assert set(trainer.history[0]) >= {"train_loss", "train_accuracy", "test_accuracy"}


def test_without_a_loss_a_setup_takes_the_trainers_default_for_its_dataset():
    assert setup_to_config({"dataset": {"name": "sine"}}).loss.name == "mse"
    assert setup_to_config({"dataset": {"name": "moons"}}).loss.name == "cross_entropy"


def test_switching_sine_then_moons_then_sine_works(client):
    """The page's way of switching: the new dataset with its defaults, the loss dropped when the task changes."""
    sid = new_session(client, {**SMALL, "loss": "mse"})  # moons with mse
    steps = [
        ({"dataset": {"name": "sine", "n_samples": 120, "test_size": 0.25}}, "regression", "mse"),
        ({"dataset": {"name": "moons", "n_samples": 120, "test_size": 0.25}}, "classification", "cross_entropy"),
        ({"dataset": {"name": "sine", "n_samples": 120, "test_size": 0.25}}, "regression", "mse"),
        ({"dataset": {"name": "moons", "n_samples": 120, "test_size": 0.25}, "loss": "mse"}, "classification", "mse"),
    ]
    for change, task, loss in steps:
        setup = {**{k: v for k, v in state(client, sid)["setup"].items() if k != "loss"}, **change}
        r = client.put(f"/api/sessions/{sid}/setup", json=setup, headers=ORIGIN)
        assert r.status_code == 200, r.text
        assert r.json()["setup"]["loss"] == loss and r.json()["setup"]["dataset"]["name"] == change["dataset"]["name"]
        assert client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).status_code == 200
        assert client.get(f"/api/sessions/{sid}/export").status_code == 200
        assert f"task: {task}" in client.get(f"/api/sessions/{sid}/export").text


def test_the_page_names_its_controls_and_colours_from_the_server(client):
    page = options()
    assert page["controls"] == CONTROLS
    assert page["palette"] == {"classes": list(CLASS_COLORS), "negative": NEGATIVE, "positive": POSITIVE,
                               "splits": {"train": CLASS_COLORS[0], "validation": CLASS_COLORS[1], "test": CLASS_COLORS[2]}}
    assert client.get("/api/options").json() == json.loads(json.dumps(page))
    html, script = client.get("/").text, client.get("/app.js").text
    for key in CONTROLS:
        own = key.startswith("optimizer.") and "ui.options.controls[`optimizer.${key}`]" in script  # an optimizer's option
        assert f'data-control="{key}"' in html or f'"{key}"' in script or own, key  # every label comes from CONTROLS
    hexes = {c.lower() for c in re.findall(r"#[0-9a-fA-F]{6}\b", script)}
    assert not hexes & {c.lower() for c in CLASS_COLORS}  # no second copy of the palette


@pytest.mark.parametrize("message, shown", [
    ("optimizer.lr must be a finite number > 0, got -1", "Learning rate must be a finite number > 0, got -1"),
    ("model.hidden[0] must be an int >= 1, got 0", "Neurons in hidden layer 1 must be an int >= 1, got 0"),
    ("dataset.n_samples=4 with dataset.test_size=0.1 gives 1 test sample",
     "Samples 4 with Test fraction 0.1 gives 1 test sample"),
    ("dataset.noise does not apply to dataset 'blobs'", "Noise does not apply to dataset 'blobs'"),
    ("unknown setting dataset.'path'; dataset takes: name", "unknown setting dataset.'path'; dataset takes: name"),
    ("the loss went to nan; train_loss and loss.delta", "the loss went to nan; train_loss and loss.delta"),
])
def test_refusals_name_the_pages_controls(message, shown):
    assert in_page_words(message) == shown


@pytest.mark.parametrize("activation", HIDDEN_ACTIVATIONS)
def test_drawn_outputs_are_the_models_own(activation):
    """The page's numpy forward pass gives the compiled executor's logits."""
    trainer = Trainer(setup_to_config({**SMALL, "model": {"hidden": [5, 4], "activation": activation}}))
    trainer.train_epoch()
    X = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_allclose(trainer.layer_outputs(X)[-1], trainer.executor.logits(X), rtol=0, atol=1e-12)


def test_a_frame_holds_every_neuron_and_the_boundary():
    trainer = Trainer(setup_to_config({**SMALL, "model": {"hidden": [5, 3], "activation": "relu"}}))
    frame = trainer.frame()
    labels = base64.b64decode(frame["output"]["label"])
    assert len(labels) == GRID * GRID and set(labels) <= {0, 1}
    assert [len(base64.b64decode(n["thumbs"])) for n in frame["nodes"]] == [k * THUMB * THUMB for k in (2, 5, 3, 2)]
    assert [np.shape(w["w"]) for w in frame["weights"]] == [(5, 2), (3, 5), (2, 3)]


# ----- the page and nothing else ----------------------------------------------


def test_the_page_is_served_with_a_strict_policy(client):
    for path, kind in [("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")]:
        r = client.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        assert "default-src 'self'" in r.headers["content-security-policy"]
    assert 'src="/app.js"' in client.get("/").text


@pytest.mark.parametrize("path", [
    "/../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd", "/static/app.js", "/static/../cli.py", "/app.js/..%2f..%2fcli.py",
    "/..%2f..%2f..%2fetc%2fpasswd", "/trainer.py", "/index.html", "/api/sessions/..%2f..%2fetc%2fpasswd",
    "/api/sessions/../../etc/passwd/export",
])
def test_no_path_reaches_another_file(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert "root:" not in r.text and "import" not in r.text


def test_no_request_touches_the_file_system(client, monkeypatch):
    sid = new_session(client)  # imports and data loading done once before the guard goes up

    def refuse(*args, **kwargs):
        raise AssertionError(f"a request opened a file: {args[:1]}")

    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    monkeypatch.setattr(Path, "open", refuse)
    assert client.get("/").status_code == 200
    assert client.put(f"/api/sessions/{sid}/setup", json={**SMALL, "seed": 4}, headers=ORIGIN).status_code == 200
    assert client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).status_code == 200
    assert client.get(f"/api/sessions/{sid}/export").status_code == 200
    assert client.get(f"/api/sessions/{sid}/model").status_code == 200
    assert client.post(f"/api/sessions/{sid}/reset", headers=ORIGIN).status_code == 200


# ----- origin and host --------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Origin": "http://testserver:8080"}, {"Origin": "https://testserver"}])
def test_state_changes_from_another_origin_are_refused(client, headers):
    sid = new_session(client)
    before = state(client, sid)
    assert client.post("/api/sessions", json={}, headers=headers).status_code == 403
    for method, path in [("put", "/setup"), ("post", "/step"), ("post", "/play"), ("post", "/reset")]:
        r = getattr(client, method)(f"/api/sessions/{sid}{path}", json={**SMALL, "seed": 9} if path == "/setup" else {},
                                    headers=headers)
        assert r.status_code == 403 and "cross-origin request refused" in r.json()["error"]
    assert state(client, sid) == before


def test_a_host_header_naming_another_server_is_refused(client):
    """A DNS-rebinding page would send its own name as Host, with a matching Origin."""
    r = client.post("/api/sessions", json={}, headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert r.status_code == 400 and "unexpected Host header" in r.text
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_websockets_check_the_origin(client):
    sid = new_session(client)
    for headers in ({}, {"Origin": "http://evil.example"}):
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect(f"/api/sessions/{sid}/live", headers=headers):
                pass
        assert refused.value.code == 1008
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/live", headers=ORIGIN):
            pass
    with client.websocket_connect(f"/api/sessions/{sid}/live", headers=ORIGIN) as ws:
        assert ws.receive_json()["type"] == "frame"


# ----- hostile inputs: 4xx, and the session as it was -------------------------

BAD_BODIES = [
    ("[1, 2]", 400, "the setup must be a JSON object"),
    ('"moons"', 400, "the setup must be a JSON object"),
    ("{not json", 400, "not valid JSON"),
    ("[" * 5000 + "]" * 5000, 400, "not valid JSON|the setup must be"),
    ('{"seed": 1' + "0" * 5000 + "}", 400, "not valid JSON"),
    ('{"optimizer": {"name": "sgd", "lr": NaN}}', 400, "^Learning rate must be a finite number > 0"),
    ('{"optimizer": {"name": "sgd", "lr": 1e400}}', 400, "^Learning rate must be a finite number > 0"),
    ('{"optimizer": {"name": "sgd", "lr": "fast"}}', 400, "^Learning rate must be a finite number > 0, got 'fast'"),
    ('{"seed": 4294967296}', 400, r"^Seed must be an int in \[0, 4294967295\], got 4294967296"),
    ('{"seed": true}', 400, "^Seed must be an int"),
    ('{"dataset": {"name": "moons", "n_samples": 100000000}}', 400, "^Samples must be <= 2000 in the playground"),
    ('{"dataset": {"name": "moons", "n_samples": 1}}', 400, "^Samples must be an int >= 2, got 1"),
    ('{"dataset": {"name": "moons", "n_samples": 4, "test_size": 0.1}}', 400,
     "^Samples 4 with Test fraction 0.1 gives 1 test sample for 2 classes"),
    ('{"dataset": {"name": "moons", "test_size": 1.5}}', 400, r"^Test fraction must be a finite number in \(0, 1\)"),
    ('{"dataset": {"name": "iris"}}', 400, "^Dataset must be one of moons, circles, blobs, xor, spiral, sine"),
    ('{"dataset": {"name": "csv", "path": "/etc/passwd", "target": "x"}}', 400, "unknown setting dataset.'path'"),
    ('{"model": {"hidden": "16"}}', 400, "^Hidden layers must be a list of ints"),
    ('{"model": {"hidden": [4, 1000000000]}}', 400, "^Neurons in hidden layer 2 must be at most 32 in the playground"),
    ('{"model": {"hidden": [4, 0]}}', 400, "^Neurons in hidden layer 2 must be an int >= 1, got 0"),
    ('{"model": {"hidden": [2, 2, 2, 2, 2, 2, 2]}}', 400, "^Hidden layers must have at most 6 layers"),
    ('{"model": {"hidden": [16], "activation": "linear"}}', 400, "^Activation must be one of relu, tanh, sigmoid"),
    ('{"loss": "mse2"}', 400, "^Loss must be one of"),
    ('{"loss": "l1"}', 400, "^Loss 'l1' does not fit the moons dataset; its losses are cross_entropy, hinge, mse$"),
    ('{"dataset": {"name": "sine"}, "loss": {"name": "hinge"}}', 400,
     "^Loss 'hinge' does not fit the sine dataset; its losses are mse, l1, huber$"),
    ('{"training": {"batch_size": 0}}', 400, "^Batch size must be an int >= 1 or 'full', got 0"),
    ('{"training": {"batch_size": 16, "backend": "eager"}}', 400, "unknown setting training.'backend'"),
]


@pytest.mark.parametrize("body, status, message", BAD_BODIES)
def test_a_bad_setup_is_4xx_and_changes_nothing(client, body, status, message):
    sid = new_session(client)
    assert client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).status_code == 200
    before = state(client, sid)
    r = client.put(f"/api/sessions/{sid}/setup", content=body,
                   headers={**ORIGIN, "Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert __import__("re").search(message, r.json()["error"]), r.json()["error"]
    assert state(client, sid) == before
    assert client.post("/api/sessions", content=body, headers={**ORIGIN, "Content-Type": "application/json"}).status_code == status


def test_oversized_and_mistyped_bodies(client):
    sid = new_session(client)
    before = state(client, sid)
    huge = json.dumps({"seed": 1, "pad": "x" * 20000})
    r = client.put(f"/api/sessions/{sid}/setup", content=huge, headers={**ORIGIN, "Content-Type": "application/json"})
    assert r.status_code == 413 and "at most 16384 bytes" in r.json()["error"]
    r = client.put(f"/api/sessions/{sid}/setup", content=json.dumps(SMALL),
                   headers={**ORIGIN, "Content-Type": "text/plain"})
    assert r.status_code == 415 and "must be application/json, got text/plain" in r.json()["error"]
    assert client.get(f"/api/sessions/{sid}/setup").status_code == 405
    assert state(client, sid) == before


@pytest.mark.parametrize("body, message", [
    ({"speed": -1}, "speed must be a number of epochs per second"),
    ({"speed": 0}, "speed must be a number of epochs per second"),
    ({"speed": "fast"}, "speed must be a number"),
    ({"speed": 1e9}, r"in \(0, 1000\]"),
    ({"speed": True}, "speed must be a number"),
    ({"epochs": 5}, "play takes"),
])
def test_play_checks_its_speed(client, body, message):
    sid = new_session(client)
    r = client.post(f"/api/sessions/{sid}/play", json=body, headers=ORIGIN)
    assert r.status_code == 400 and __import__("re").search(message, r.json()["error"])
    assert state(client, sid)["status"] == "paused"


def test_unknown_sessions_are_404(client):
    for path in ["/api/sessions/nope", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA", "/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/export"]:
        r = client.get(path)
        assert r.status_code == 404 and "no such session" in r.json()["error"]
    assert client.post("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA/step", headers=ORIGIN).status_code == 404
    assert client.post("/api/sessions/x/pause", json={"a": 1}, headers=ORIGIN).status_code == 404


# ----- play, pause, step, reset -----------------------------------------------


def test_step_trains_exactly_one_epoch_and_reset_starts_over(client):
    sid = new_session(client)
    assert client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).json()["epoch"] == 1
    second = client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).json()
    assert second["epoch"] == 2 and second["metrics"]["epoch"] == 2
    weights = client.get(f"/api/sessions/{sid}/model").json()
    reset = client.post(f"/api/sessions/{sid}/reset", headers=ORIGIN).json()
    assert reset["epoch"] == 0 and reset["version"] == second["version"] + 1
    client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
    client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
    assert client.get(f"/api/sessions/{sid}/model").json() == weights  # same seed: the same run again
    assert client.post(f"/api/sessions/{sid}/step", json={"n": 2}, headers=ORIGIN).status_code == 400


def test_pause_stops_between_epochs_and_step_adds_one(client):
    sid = new_session(client)
    assert client.post(f"/api/sessions/{sid}/play", json={"speed": None}, headers=ORIGIN).json()["status"] == "playing"
    until(lambda: state(client, sid)["epoch"] >= 5)
    paused = client.post(f"/api/sessions/{sid}/pause", headers=ORIGIN).json()
    assert paused["status"] == "paused"
    time.sleep(0.2)
    after = state(client, sid)
    assert after["epoch"] == paused["epoch"] == len(after["history"])
    assert client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).json()["epoch"] == paused["epoch"] + 1


def test_a_diverged_run_refuses_to_go_on(client):
    sid = new_session(client, {**SMALL, "model": {"hidden": [6], "activation": "relu"},
                               "optimizer": {"name": "sgd", "lr": 1e300}})
    stepped = client.post(f"/api/sessions/{sid}/step", headers=ORIGIN).json()
    assert stepped["status"] == "diverged" and stepped["epoch"] == 0
    assert stepped["error"].startswith("training diverged at epoch 1")
    r = client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
    assert r.status_code == 409 and "reset or change the setup" in r.json()["error"]
    assert client.post(f"/api/sessions/{sid}/play", json={}, headers=ORIGIN).status_code == 409
    assert client.get(f"/api/sessions/{sid}/export").status_code == 409
    assert client.put(f"/api/sessions/{sid}/setup", json=SMALL, headers=ORIGIN).json()["status"] == "paused"


def test_nothing_to_export_before_the_first_epoch(client):
    sid = new_session(client)
    r = client.get(f"/api/sessions/{sid}/export")
    assert r.status_code == 409 and "train at least one epoch" in r.json()["error"]


# ----- sessions: limit, eviction, idle ----------------------------------------


def test_the_session_idle_longest_makes_room():
    clock = FakeClock()
    with TestClient(create_app(["testserver"], max_sessions=3, clock=clock)) as client:
        ids = []
        for _ in range(3):
            ids.append(new_session(client))
            clock.now += 10
        state(client, ids[0])  # the first is used again: the second is now idle longest
        clock.now += 10
        newest = new_session(client)
        assert client.get(f"/api/sessions/{ids[1]}").status_code == 404
        for sid in (ids[0], ids[2], newest):
            assert state(client, sid)["session"] == sid
        assert len(client.app.sessions) == 3


def test_an_evicted_sessions_page_is_told():
    with TestClient(create_app(["testserver"], max_sessions=1)) as client:
        sid = new_session(client)
        with client.websocket_connect(f"/api/sessions/{sid}/live", headers=ORIGIN) as ws:
            assert ws.receive_json()["type"] == "frame"
            new_session(client)
            ws.send_text("drawn")
            message = ws.receive_json()
            assert message["type"] == "closed" and "make room" in message["note"]


def test_an_idle_sessions_trainer_stops_after_ten_minutes():
    clock = FakeClock()
    with TestClient(create_app(["testserver"], clock=clock, reap_every=0.02)) as client:
        sid = new_session(client)
        client.post(f"/api/sessions/{sid}/play", json={"speed": 50}, headers=ORIGIN)
        clock.now += 599
        time.sleep(0.1)
        assert state(client, sid)["status"] == "playing"  # the GET is a request: it counts as use
        clock.now += 600
        until(lambda: client.app.sessions.get(sid).status == "paused")
        s = state(client, sid)
        assert s["status"] == "paused" and "stopped after 10 idle minutes" in s["note"]


def test_playing_sessions_take_turns_one_epoch_each(monkeypatch):
    """The fair share: with one slot, epochs never overlap and two flat-out sessions alternate, epoch by epoch."""
    running, most, order = [0], [0], []
    real = Trainer.train_epoch

    def counted(self):
        running[0] += 1
        most[0] = max(most[0], running[0])
        time.sleep(0.003)  # long enough for the other session to be waiting
        real(self)
        order.append(self.config.dataset.n_samples)
        running[0] -= 1

    monkeypatch.setattr(Trainer, "train_epoch", counted)

    async def play_both():
        sessions = Sessions(slots=1)
        big = await sessions.create(Trainer(setup_to_config({**SMALL, "dataset": {**SMALL["dataset"], "n_samples": 800}})))
        small = await sessions.create(Trainer(setup_to_config(SMALL)))
        await big.play(None)
        await small.play(None)
        while len(order) < 40:
            await asyncio.sleep(0.01)
        await sessions.close_all()

    asyncio.run(play_both())
    assert most[0] == 1
    steady = order[2:40]  # after both have started
    assert all(a != b for a, b in zip(steady, steady[1:])), steady  # neither gets two turns in a row
    assert steady.count(800) >= 18 and steady.count(120) >= 18


def test_a_config_opens_as_a_setup_with_its_optimizers_options():
    from micronet.config import load_config
    from micronet.playground.trainer import open_config

    setup = open_config(load_config("moons"))
    assert setup["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": False}
    assert setup["dataset"]["name"] == "moons" and setup["training"] == {"batch_size": 64}
    config = setup_to_config(setup)
    assert config.optimizer.momentum == 0.9 and config.optimizer.schedule.name == "constant"
    assert open_config(load_config("circles"))["dataset"]["factor"] == 0.5
    with pytest.raises(SetupError, match=r"dataset.name must be one of moons, .* in the playground, got 'iris'"):
        open_config(load_config("iris"))
    with pytest.raises(SetupError, match=r"dataset.n_features must be 2 in the playground, got 3"):
        open_config(parse_config({"dataset": {"name": "blobs", "n_features": 3}}))


def test_an_optimizers_options_are_set_or_refused_by_the_trainers_rules():
    config = setup_to_config({**SMALL, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.25}})
    assert config.optimizer.momentum == 0.25 and config.optimizer.nesterov is False
    with pytest.raises(ConfigError, match=r"optimizer.momentum does not apply to optimizer 'adam' \(it takes: lr, betas, eps, weight_decay\)"):
        setup_to_config({**SMALL, "optimizer": {"name": "adam", "lr": 0.1, "momentum": 0.5}})
    assert in_page_words("optimizer.momentum must be a finite number in [0, 1), got 2") \
        == "Momentum must be a finite number in [0, 1), got 2"
    assert options()["optimizer_options"] == {"sgd": {"momentum": 0.9, "nesterov": False},
                                             "adam": {"betas": [0.9, 0.999], "eps": 1e-8}}


def test_a_new_session_without_a_setup_opens_on_the_servers_config():
    opened = {**SMALL, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.5, "nesterov": False}}
    with TestClient(create_app(["testserver"], setup=opened)) as client:
        assert client.get("/api/options").json()["default"] == opened
        sid = new_session(client, {})
        assert state(client, sid)["setup"] == opened


def test_a_classroom_server_answers_to_its_addresses_and_named_hosts_only():
    with TestClient(create_app(["testserver", "lab-pc.local"], any_address=True)) as client:
        for host in ("192.168.1.5", "[fe80::1]:8765", "lab-pc.local:8765", "testserver"):
            assert client.get("/api/options", headers={"Host": host}).status_code == 200, host
        r = client.get("/api/options", headers={"Host": "evil.example"})
        assert r.status_code == 400 and "and its IP addresses" in r.text
        r = client.post("/api/sessions", json={}, headers={"Host": "192.168.1.5", "Origin": "http://evil.example"})
        assert r.status_code == 403  # the Origin check stays


def test_at_most_four_viewers_per_session(client):
    sid = new_session(client)
    url = f"/api/sessions/{sid}/live"
    with client.websocket_connect(url, headers=ORIGIN), client.websocket_connect(url, headers=ORIGIN), \
            client.websocket_connect(url, headers=ORIGIN), client.websocket_connect(url, headers=ORIGIN):
        with pytest.raises(WebSocketDisconnect):
            with client.websocket_connect(url, headers=ORIGIN):
                pass


def test_frames_wait_for_the_page_and_carry_new_rows(client):
    sid = new_session(client)
    with client.websocket_connect(f"/api/sessions/{sid}/live", headers=ORIGIN) as ws:
        first = ws.receive_json()
        assert first["epoch"] == 0 and first["rows"] == [] and first["scene"]["layers"] == [2, 6, 2]
        client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
        client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
        ws.send_text("drawn")  # only now may the next frame come: the latest epoch, both rows
        second = ws.receive_json()
        assert second["epoch"] == 2 and second["rows_from"] == 0 and [r["epoch"] for r in second["rows"]] == [1, 2]
        assert "scene" not in second
        client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
        ws.send_text("drawn")
        third = ws.receive_json()
        assert third["rows_from"] == 2 and [r["epoch"] for r in third["rows"]] == [3]


# ----- the export reproduces the session --------------------------------------


def train_cli(config_text: str, tmp_path: Path) -> Path:
    """Run `micronet-train` on an exported config; returns the run directory."""
    (tmp_path / "export.yaml").write_text(config_text)
    script = shutil.which("micronet-train", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "micronet.train"]
    out = tmp_path / "run"
    subprocess.run([*command, str(tmp_path / "export.yaml"), "--out", str(out), "--no-progress"],
                   check=True, capture_output=True, timeout=120)
    return out


def read_metrics(run_dir: Path) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if k != "seconds"}
                for row in csv.DictReader(f)]


@pytest.mark.parametrize("setup", [
    SMALL,
    pytest.param({**SMALL, "dataset": {"name": "blobs", "n_samples": 150, "cluster_std": 1.5, "test_size": 0.3},
                  "model": {"hidden": [5, 4], "activation": "relu"}, "optimizer": {"name": "adam", "lr": 0.01},
                  "loss": "hinge", "training": {"batch_size": "full"}}, id="blobs-adam-hinge-full", marks=pytest.mark.slow),
    pytest.param({**SMALL, "dataset": {"name": "sine", "n_samples": 80, "noise": 0.1, "test_size": 0.25}, "loss": "mse"},
                 id="sine-regression", marks=pytest.mark.slow),
    pytest.param({**SMALL, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.5, "nesterov": True}},
                 id="sgd-nesterov-momentum-0.5"),
    pytest.param({**SMALL, "dataset": {"name": "circles", "n_samples": 100, "noise": 0.05, "factor": 0.3, "test_size": 0.25},
                  "optimizer": {"name": "adam", "lr": 0.02, "betas": [0.8, 0.99], "eps": 1e-6}},
                 id="circles-factor-adam-betas", marks=pytest.mark.slow),
])
def test_the_exported_config_reproduces_the_session_exactly(client, tmp_path, setup):
    sid = new_session(client, setup)
    for _ in range(3):
        client.post(f"/api/sessions/{sid}/step", headers=ORIGIN)
    client.post(f"/api/sessions/{sid}/play", json={"speed": None}, headers=ORIGIN)
    until(lambda: state(client, sid)["epoch"] >= 6)
    client.post(f"/api/sessions/{sid}/pause", headers=ORIGIN)
    session = state(client, sid)
    r = client.get(f"/api/sessions/{sid}/export")
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    exported = yaml.safe_load(r.text)
    assert exported["training"]["epochs"] == session["epoch"] and exported["seed"] == setup["seed"]
    run_dir = train_cli(r.text, tmp_path)
    assert read_metrics(run_dir) == [{k: v for k, v in row.items() if k != "seconds"} for row in session["history"]]
    saved = json.loads((run_dir / "model.json").read_text())
    assert saved["parameters"] == client.get(f"/api/sessions/{sid}/model").json()["parameters"]


# ----- the command line -------------------------------------------------------


def test_without_the_web_extra_it_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "starlette", None)  # import starlette now raises ImportError
    assert cli.main(["--no-browser"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'micronet-nn[playground]'" in err


def test_it_prints_the_url_and_warns_off_loopback(monkeypatch, capsys):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: served.append(sockets[0].getsockname()))
    assert cli.main(["--no-browser", "--port", "0"]) == 0
    out = capsys.readouterr()
    assert f"http://127.0.0.1:{served[0][1]}/" in out.out and out.err == ""
    assert cli.main(["--no-browser", "--port", "0", "--host", "0.0.0.0"]) == 0
    assert "warning: --host 0.0.0.0 is not a loopback address" in capsys.readouterr().err


def test_config_max_sessions_and_allowed_hosts_reach_the_server(monkeypatch, capsys):
    import uvicorn

    apps = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets: apps.append(self.config.app))
    assert cli.main(["sine", "--no-browser", "--port", "0", "--max-sessions", "30",
                     "--host", "0.0.0.0", "--allow-host", "Lab-PC.local"]) == 0
    app = apps[0]
    assert app.sessions.limit == 30 and "lab-pc.local" in app.hosts and "127.0.0.1" in app.hosts
    assert app.any_address
    with TestClient(app) as client:
        options = client.get("/api/options", headers={"Host": "lab-pc.local"}).json()
        assert options["default"]["dataset"]["name"] == "sine"
        assert client.get("/api/options", headers={"Host": "evil.example"}).status_code == 400
    assert cli.main(["--no-browser", "--port", "0"]) == 0
    assert apps[1].sessions.limit == 8 and not apps[1].any_address


@pytest.mark.parametrize("argv, message", [
    (["no-such-config.yaml"], "error: config file not found: 'no-such-config.yaml'"),
    (["iris"], "error: dataset.name must be one of moons, circles, blobs, xor, spiral, sine in the playground, got 'iris'"),
    (["--max-sessions", "0"], "error: --max-sessions must be >= 1, got 0"),
    (["--allow-host", "*"], "error: --allow-host takes a host name such as lab-pc.local, got '*'"),
])
def test_command_line_mistakes_are_one_line_and_exit_2(capsys, argv, message):
    assert cli.main([*argv, "--no-browser", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err  # the trainer's own message, one line


def test_a_port_in_use_is_one_line_and_exit_2(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert cli.main(["--no-browser", "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is in use; try --port 0" in err


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True),
                                            ("127.0.0.2", True), ("0.0.0.0", False), ("192.168.1.5", False),
                                            ("example.org", False)])
def test_which_hosts_are_loopback(host, loopback):
    assert cli.is_loopback(host) is loopback
