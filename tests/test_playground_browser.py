"""The playground in a real headless Chromium (Debian's), driven by Playwright for Python.

One server (the real command line, on a free loopback port) and one browser
for the module; each test opens its own tab, which is its own session. The
page runs under its Content-Security-Policy, so waiting is done by polling
`page.evaluate` (Playwright's wait_for_function would need eval). Every wait
has a deadline, and the server is stopped at the end whatever happens.
"""

import csv
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
INSTALL = "browser tests need Debian's chromium and playwright: apt-get install -y chromium; pip install playwright"


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing"
    return None


@pytest.fixture(scope="module")
def server():
    """`python -m micronet.playground --port 0`: its URL, then stopped."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "micronet.playground", "--no-browser", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("micronet playground: http://127.0.0.1:"), (line, proc.poll())
        yield line.split()[2]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing}; in CI the browser tests must run ({INSTALL})")
        pytest.skip(f"{missing}: {INSTALL}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 950}, accept_downloads=True,
        )
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server)
    wait_for(page, "window.playground.framesDrawn > 0")
    yield page
    page.close()
    assert errors == []


def wait_for(page, expression: str, timeout: float = 60.0):
    """Poll a JavaScript expression until it is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def shown_epoch(page) -> int:
    return int(page.text_content("#epoch"))


PIXEL_VARIANCE = """(() => {
  const canvas = document.getElementById("boundary");
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, squares = 0;
  for (let i = 0; i < data.length; i += 4) {
    const v = 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    sum += v; squares += v * v;
  }
  const n = data.length / 4;
  return squares / n - (sum / n) ** 2;
})()"""


def test_moons_trains_live_and_the_export_reproduces_it(page, tmp_path):
    page.click("#datasets button[data-name=moons]")
    wait_for(page, "window.playground.version >= 1 && window.playground.setup.dataset.name === 'moons'")
    page.select_option("#speed", "30")
    page.click("#play")
    wait_for(page, "Number(document.getElementById('epoch').textContent) > 30")
    assert float(page.text_content("#test-score")) >= 0.9
    assert page.evaluate(PIXEL_VARIANCE) > 200  # two shaded regions and the points, not a blank canvas

    page.click("#play")  # now the pause button
    wait_for(page, "window.playground.status === 'paused'")
    before = shown_epoch(page)
    page.click("#step")
    wait_for(page, f"Number(document.getElementById('epoch').textContent) !== {before}")
    time.sleep(0.5)  # nothing more may come
    assert shown_epoch(page) == before + 1
    session = page.evaluate("fetch('/api/sessions/' + window.playground.session).then((r) => r.json())")
    assert session["epoch"] == before + 1 and session["status"] == "paused"
    shown_history = page.evaluate("window.playground.history")

    with page.expect_download() as download:
        page.click("#export")
    exported = tmp_path / "exported.yaml"
    download.value.save_as(exported)
    script = shutil.which("micronet-train", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "micronet.train"]
    run_dir = tmp_path / "run"
    subprocess.run([*command, str(exported), "--out", str(run_dir), "--no-progress"],
                   check=True, capture_output=True, timeout=120)
    with open(run_dir / "metrics.csv", newline="") as f:
        trained = [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if k != "seconds"}
                   for row in csv.DictReader(f)]
    expected = [{k: v for k, v in row.items() if k != "seconds"} for row in session["history"]]
    assert trained == expected  # exactly: the same floats
    assert [{k: v for k, v in row.items() if k != "seconds"} for row in shown_history] == expected
    weights = page.evaluate("fetch('/api/sessions/' + window.playground.session + '/model').then((r) => r.json())")
    assert json.loads((run_dir / "model.json").read_text())["parameters"] == weights["parameters"]
    page.screenshot(path=str(tmp_path / "playground.png"), full_page=True)


def test_sine_shows_the_fitted_curve(page, tmp_path):
    page.click("#datasets button[data-name=sine]")
    wait_for(page, "window.playground.scene && window.playground.scene.task === 'regression'")
    assert page.text_content("#test-score-name") == "Test R²"
    assert page.input_value("#loss") == "mse"
    page.click("#step")
    wait_for(page, "window.playground.epoch === 1 && window.playground.frame.epoch === 1")
    assert page.evaluate(PIXEL_VARIANCE) > 20
    page.screenshot(path=str(tmp_path / "sine.png"), full_page=True)


def test_a_refused_setup_shows_the_trainers_rule_in_the_pages_words(page):
    page.fill("#seed", "-3")
    page.dispatch_event("#seed", "change")
    wait_for(page, "!document.getElementById('message').hidden")
    label = page.text_content("label:has(#seed) .label")
    assert label == "Seed"  # the control's name, from the server
    assert page.text_content("#message") == f"{label} must be an int in [0, 4294967295], got -3"
    assert page.input_value("#seed") == "0"  # the control shows the setup the server kept


def loss_menu(page):
    return page.evaluate("[...document.getElementById('loss').options].map((o) => o.value)")


def pick(page, dataset, task):
    page.click(f"#datasets button[data-name={dataset}]")
    wait_for(page, f"window.playground.setup.dataset.name === '{dataset}' && window.playground.scene"
                   f" && window.playground.scene.task === '{task}'")
    assert page.is_hidden("#message"), page.text_content("#message")


def test_sine_moons_and_back_each_switch_works_and_the_loss_menu_follows(page):
    pick(page, "sine", "regression")
    assert loss_menu(page) == ["mse", "l1", "huber"] and page.input_value("#loss") == "mse"
    pick(page, "moons", "classification")  # refused before: mse made the task regression
    assert loss_menu(page) == ["cross_entropy", "hinge", "mse"] and page.input_value("#loss") == "cross_entropy"
    page.select_option("#loss", "mse")  # offered, so accepted: the trainer's one-hot mse
    wait_for(page, "window.playground.setup.loss === 'mse' && window.playground.version >= 3")
    assert page.is_hidden("#message")
    page.click("#step")
    wait_for(page, "window.playground.epoch === 1 && window.playground.history.length === 1")
    assert 0 <= float(page.text_content("#test-score")) <= 1
    pick(page, "sine", "regression")
    assert page.input_value("#loss") == "mse" and page.text_content("#test-score-name") == "Test R²"
    page.select_option("#loss", "huber")
    wait_for(page, "window.playground.setup.loss === 'huber'")
    pick(page, "moons", "classification")
    assert page.input_value("#loss") == "cross_entropy"
    page.select_option("#loss", "hinge")
    wait_for(page, "window.playground.setup.loss === 'hinge'")
    pick(page, "circles", "classification")
    assert page.input_value("#loss") == "hinge"  # the same task keeps its loss


def test_a_reload_keeps_a_working_session_and_not_a_diverged_one(page):
    first = page.evaluate("window.playground.session")
    page.reload()
    wait_for(page, "window.playground.framesDrawn > 0")
    assert page.evaluate("window.playground.session") == first  # a working session survives a reload
    page.evaluate("""fetch(`/api/sessions/${window.playground.session}/setup`, {method: "PUT",
        headers: {"Content-Type": "application/json"},
        body: JSON.stringify({...window.playground.setup, optimizer: {name: "sgd", lr: 1e300}})})""")
    page.click("#step")
    wait_for(page, "window.playground.status === 'diverged'")
    assert page.is_disabled("#play")
    page.reload()
    wait_for(page, "window.playground.framesDrawn > 0")
    assert page.evaluate("window.playground.session") != first
    assert page.evaluate("[window.playground.status, window.playground.epoch]") == ["paused", 0]
    assert page.evaluate("window.playground.setup.optimizer.lr") == 1e300  # the same setup, from epoch 0
    assert page.is_enabled("#play")


def test_the_page_draws_classes_in_the_palettes_colours(page):
    """Class 0 and 1 as in the PNGs and the GIF: the legend, and the centre of the most isolated point of each."""
    from micronet.palette import CLASS_COLORS, rgb

    expected = [[round(255 * v) for v in rgb(c)] for c in CLASS_COLORS[:2]]
    wait_for(page, "window.playground.scene && window.playground.scene.task === 'classification'")
    legend = page.evaluate("[...document.querySelectorAll('#legend i')].map((i) => getComputedStyle(i).backgroundColor)")
    assert legend == [f"rgb({r}, {g}, {b})" for r, g, b in expected]
    assert page.evaluate(POINT_COLOURS) == expected


POINT_COLOURS = """(() => {
  const scene = window.playground.scene;
  const canvas = document.getElementById("boundary");
  const ratio = canvas.width / 400;
  const [x0, x1, y0, y1] = scene.extent;
  const at = (x) => [((x[0] - x0) / (x1 - x0)) * 400, 400 - ((x[1] - y0) / (y1 - y0)) * 400];
  const all = [...scene.train.x, ...scene.test.x].map(at);
  return [0, 1].map((label) => {
    let best = null, room = -1;
    scene.train.x.forEach((x, i) => {
      if (scene.train.y[i] !== label) return;
      const [cx, cy] = at(x);
      const gap = Math.min(...all.map(([px, py]) => Math.hypot(px - cx, py - cy) || Infinity));
      if (gap > room) { room = gap; best = [cx, cy]; }
    });
    const pixel = canvas.getContext("2d").getImageData(Math.floor(best[0] * ratio), Math.floor(best[1] * ratio), 1, 1);
    return [...pixel.data.slice(0, 3)];
  });
})()"""


def test_frame_rate_while_training_moons(page, capsys):
    """Frames drawn per second by the page, training moons with 2-16-16-2 as fast as it goes (a measurement)."""
    setup = page.evaluate("window.playground.setup")
    assert setup["model"]["hidden"] == [16, 16] and setup["dataset"]["name"] == "moons"
    page.select_option("#speed", "max")
    page.click("#play")
    wait_for(page, "window.playground.epoch > 0")
    start = page.evaluate("[window.playground.framesDrawn, window.playground.epoch, performance.now()]")
    time.sleep(10)
    end = page.evaluate("[window.playground.framesDrawn, window.playground.epoch, performance.now()]")
    page.click("#play")
    seconds = (end[2] - start[2]) / 1000
    frames, epochs = end[0] - start[0], end[1] - start[1]
    assert frames > 0 and epochs >= frames
    with capsys.disabled():
        print(f"\nplayground: {frames / seconds:.1f} frames/s, {epochs / seconds:.1f} epochs/s "
              f"(moons 300, 2-16-16-2, batch 10, flat out, {seconds:.1f} s)")


# Every request that changes something is answered `delay` ms late (a slow or loaded server), and each
# value the epoch counter shows is recorded with the trainer version it belongs to.
SLOW_SERVER = """(() => {
  const realFetch = window.fetch.bind(window);
  window.fetch = async (url, init) => {
    const response = await realFetch(url, init);
    if (init && init.method && init.method !== "GET") await new Promise((r) => setTimeout(r, %d));
    return response;
  };
  window.shownEpochs = [];
  document.addEventListener("DOMContentLoaded", () => {
    new MutationObserver(() => {
      window.shownEpochs.push([window.playground.version, Number(document.getElementById("epoch").textContent)]);
    }).observe(document.getElementById("epoch"), { childList: true, characterData: true, subtree: true });
  });
})()"""


@pytest.fixture
def slow_page(browser, server):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(SLOW_SERVER % 700)
    page.goto(server)
    wait_for(page, "window.playground.framesDrawn > 0")
    yield page
    page.close()
    assert errors == []


def settled(page):
    wait_for(page, "window.playground.pending === 0")
    return page.evaluate("window.playground.setup")


def test_interleaved_menus_on_a_slow_server_all_apply_in_order(slow_page):
    page = slow_page
    page.select_option("#lr", "0.1")
    page.select_option("#optimizer", "adam")  # before the lr change is answered
    assert page.input_value("#optimizer") == "adam" and page.input_value("#lr") == "0.1"  # shown at once
    page.select_option("#activation", "tanh")
    page.select_option("#lr", "0.01")  # a later change of the same menu wins
    setup = settled(page)
    assert setup["optimizer"] == {"name": "adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8}
    assert setup["model"]["activation"] == "tanh"
    session = page.evaluate("fetch('/api/sessions/' + window.playground.session).then((r) => r.json())")
    assert session["setup"] == setup  # the server has it too
    assert page.input_value("#optimizer") == "adam" and page.input_value("#lr") == "0.01"


def test_rapid_clicks_on_a_slow_server_are_all_counted(slow_page):
    page = slow_page
    assert page.evaluate("window.playground.setup.model.hidden") == [16, 16]
    plus = "#widths .width:nth-child(1) button:last-child"
    for _ in range(8):
        page.click(plus)
        time.sleep(0.1)
    page.click("#add-layer")
    page.click("#widths .width:nth-child(2) button:first-child")  # minus on the second layer
    page.select_option("#lr", "0.3")
    setup = settled(page)
    assert setup["model"]["hidden"] == [24, 15, 16] and setup["optimizer"]["lr"] == 0.3
    assert page.text_content("#widths .width:nth-child(1) span") == "24"
    session = page.evaluate("fetch('/api/sessions/' + window.playground.session).then((r) => r.json())")
    assert session["setup"]["model"]["hidden"] == [24, 15, 16]


def test_a_refused_change_among_queued_ones_is_dropped_alone(slow_page):
    page = slow_page
    page.select_option("#lr", "0.1")
    page.fill("#seed", "-3")
    page.dispatch_event("#seed", "change")
    page.select_option("#activation", "tanh")
    setup = settled(page)
    assert setup["optimizer"]["lr"] == 0.1 and setup["model"]["activation"] == "tanh" and setup["seed"] == 0
    assert page.text_content("#message") == "Seed must be an int in [0, 4294967295], got -3"
    assert page.input_value("#seed") == "0"


def test_play_and_changes_on_a_slow_server_never_show_an_older_epoch(slow_page):
    page = slow_page
    page.select_option("#speed", "30")
    page.click("#play")
    wait_for(page, "window.playground.epoch > 5")
    version = page.evaluate("window.playground.version")
    page.select_option("#lr", "0.1")  # a new trainer: epochs count from 0 again, under a new version
    page.click("#step")  # queued behind the change: one epoch of the new setup
    settled(page)
    wait_for(page, f"window.playground.version === {version + 1} && window.playground.epoch === 1")
    page.click("#play")
    wait_for(page, "window.playground.epoch > 5")
    page.click("#play")
    wait_for(page, "window.playground.status === 'paused' && window.playground.pending === 0")
    shown = page.evaluate("window.shownEpochs")
    assert len(shown) > 10
    assert all(a <= b for a, b in zip(shown, shown[1:])), shown  # (version, epoch) never goes back
    assert page.evaluate("window.playground.setup.optimizer.lr") == 0.1


def api_session(page):
    return page.evaluate("fetch('/api/sessions/' + window.playground.session).then((r) => r.json())")


def test_sgds_momentum_is_shown_and_set_and_adam_shows_its_own_options(page):
    settled(page)
    assert page.input_value("#optimizer") == "sgd"
    assert page.input_value("#optimizer-momentum") == "0.9"  # the trainer's default, shown
    assert page.text_content("label:has(#optimizer-momentum) .label") == "Momentum"
    page.fill("#optimizer-momentum", "0.5")
    page.dispatch_event("#optimizer-momentum", "change")
    page.check("#optimizer-nesterov")
    setup = settled(page)
    assert setup["optimizer"] == {"name": "sgd", "lr": 0.03, "momentum": 0.5, "nesterov": True}
    assert api_session(page)["setup"]["optimizer"]["momentum"] == 0.5
    page.fill("#optimizer-momentum", "1.5")
    page.dispatch_event("#optimizer-momentum", "change")
    wait_for(page, "!document.getElementById('message').hidden")
    assert page.text_content("#message").startswith("Momentum must be")
    settled(page)
    assert page.input_value("#optimizer-momentum") == "0.5"  # the setup the server kept
    page.select_option("#optimizer", "adam")
    setup = settled(page)
    assert setup["optimizer"] == {"name": "adam", "lr": 0.03, "betas": [0.9, 0.999], "eps": 1e-8}
    assert page.is_hidden("#optimizer-momentum") or page.query_selector("#optimizer-momentum") is None
    assert page.input_value("#optimizer-betas") == "0.9, 0.999"


def test_a_shared_link_opens_the_same_setup_and_first_weights(page, browser):
    page.click("#datasets button[data-name=circles]")
    page.select_option("#activation", "tanh")
    page.fill("#seed", "7")
    page.dispatch_event("#seed", "change")
    setup = settled(page)
    page.click("#share")
    link = page.input_value("#share-link")
    assert "#setup=" in link and page.url == link
    other = browser.new_page()
    try:
        other.goto(link)
        wait_for(other, "window.playground.framesDrawn > 0")
        assert other.evaluate("window.playground.session") != page.evaluate("window.playground.session")
        assert other.evaluate("window.playground.setup") == setup
        assert "#" not in other.url  # a reload keeps the session the link opened
        weights = "fetch('/api/sessions/' + window.playground.session + '/model').then((r) => r.json())"
        assert other.evaluate(weights) == page.evaluate(weights)  # the same first weights
    finally:
        other.close()
    page.select_option("#activation", "relu")
    assert page.is_hidden("#share-box")  # its link was of the setup before the change


def test_a_bad_link_is_refused_with_the_trainers_message_and_the_page_works(browser, server):
    from urllib.parse import quote

    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        bad = {"seed": -3, "dataset": {"name": "moons"}}
        page.goto(f"{server}#setup={quote(json.dumps(bad))}")
        wait_for(page, "window.playground.framesDrawn > 0")
        assert page.text_content("#message") == \
            "this link's setup is refused: Seed must be an int in [0, 4294967295], got -3"
        page.click("#step")
        wait_for(page, "window.playground.epoch === 1")
        page.goto("about:blank")
        page.goto(f"{server}#setup=%7Bnot-json")
        wait_for(page, "window.playground.framesDrawn > 0")
        assert "cannot be read" in page.text_content("#message")
    finally:
        page.close()
    assert errors == []


CURVE_PIXELS = """((colours) => {
  const canvas = document.getElementById("curves");
  const ratio = canvas.width / 400;
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const strip = canvas.height - Math.round(18 * ratio);
  const counts = colours.map(() => [0, 0]);  // per colour: pixels in the plot, pixels in the label strip
  for (let y = 0; y < canvas.height; y++) for (let x = 0; x < canvas.width; x++) {
    const i = 4 * (y * canvas.width + x);
    colours.forEach(([r, g, b], k) => {
      if (Math.abs(data[i] - r) < 12 && Math.abs(data[i + 1] - g) < 12 && Math.abs(data[i + 2] - b) < 12) {
        const key = x > 140 * ratio && x < 280 * ratio;  // the key's two short lines
        if (y < strip) counts[k][0] += 1; else if (!key) counts[k][1] += 1;
      }
    });
  }
  return counts;
})"""


def test_the_loss_curves_have_the_palettes_split_colours_and_labels_keep_off_them(page):
    from micronet.palette import SPLIT_COLORS, rgb

    page.select_option("#speed", "30")
    page.click("#play")
    wait_for(page, "window.playground.epoch > 20")
    page.click("#play")
    wait_for(page, "window.playground.status === 'paused'")
    colours = [[round(255 * v) for v in rgb(SPLIT_COLORS[split])] for split in ("train", "test")]
    (train_plot, train_strip), (test_plot, test_strip) = page.evaluate(f"{CURVE_PIXELS}({json.dumps(colours)})")
    assert train_plot > 100 and test_plot > 20  # both curves drawn, each in its own colour
    assert train_strip == 0 and test_strip == 0  # nothing of a curve where the labels are
    assert page.evaluate("window.playground.options.palette.splits.train") == SPLIT_COLORS["train"]


def test_sines_legend_names_train_and_test_points(page):
    pick(page, "sine", "regression")
    items = page.evaluate("[...document.querySelectorAll('#legend span')].map((s) => [s.textContent, "
                          "s.querySelector('i') ? s.querySelector('i').className : null])")
    assert items == [["train points", ""], ["test points", "hollow"]]
    pick(page, "moons", "classification")
    texts = page.evaluate("[...document.querySelectorAll('#legend span')].map((s) => s.textContent)")
    assert texts == ["class 0", "class 1", "white rim: train, dark rim: test"]


def test_a_server_opened_on_a_config_starts_there(browser, tmp_path):
    config = tmp_path / "class.yaml"
    config.write_text("seed: 5\ndataset: {name: spiral, n_samples: 400, noise: 0.1}\n"
                      "model: {hidden: [12, 12, 6], activation: tanh}\n"
                      "optimizer: {name: sgd, lr: 0.05, momentum: 0.6}\ntraining: {epochs: 50, batch_size: 16}\n")
    proc = subprocess.Popen([sys.executable, "-m", "micronet.playground", str(config), "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    page = browser.new_page()
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        line = proc.stdout.readline() if ready else ""
        assert line.startswith("micronet playground: http://127.0.0.1:"), (line, proc.poll())
        page.goto(line.split()[2])
        wait_for(page, "window.playground.framesDrawn > 0")
        setup = page.evaluate("window.playground.setup")
        assert setup["seed"] == 5 and setup["dataset"]["name"] == "spiral" and setup["model"]["hidden"] == [12, 12, 6]
        assert page.input_value("#optimizer-momentum") == "0.6"
        page.screenshot(path=str(tmp_path / "opened.png"), full_page=True)
    finally:
        page.close()
        proc.terminate()
        proc.wait(timeout=15)
