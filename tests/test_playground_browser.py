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


def test_a_refused_setup_shows_the_servers_message(page):
    page.fill("#seed", "-3")
    page.dispatch_event("#seed", "change")
    wait_for(page, "!document.getElementById('message').hidden")
    assert "seed must be an int in [0, 4294967295], got -3" in page.text_content("#message")
    assert page.input_value("#seed") == "0"  # the control shows the setup the server kept


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
