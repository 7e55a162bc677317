"""How many playground sessions one machine serves at the default pace (a measurement, not a test).

Starts the real server (`python -m micronet.playground`), opens N sessions
of the page's default setup (moons 300, 2-16-16-2, batch 10), each with a
viewer that takes every frame and answers "drawn" at once, as a page that
draws instantly would, plays them all at 10 epochs a second, and reports
each session's epochs per second over a measured window. It prints the
machine's load average before and after, since other work on the machine
takes cores from the sessions.

    python experiments/playground_capacity.py 4 8 12 16 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import threading
import time
import urllib.request

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def _call(base: str, method: str, path: str, body: object | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Origin": base.rstrip("/")})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _view(base: str, sid: str, stop: threading.Event) -> None:
    """Take frames as a page does: one at a time, each answered "drawn" at once."""
    url = base.replace("http://", "ws://") + f"api/sessions/{sid}/live"
    with connect(url, origin=base.rstrip("/"), max_size=None) as ws:
        while not stop.is_set():
            try:
                ws.recv(timeout=1.0)
            except TimeoutError:
                continue
            except ConnectionClosed:  # the server stopped at the end of the measurement
                return
            ws.send("drawn")


def measure(n: int, seconds: float, pace: float) -> list[float]:
    """Epochs per second of each of `n` sessions playing at `pace` epochs a second, over `seconds`."""
    proc = subprocess.Popen([sys.executable, "-m", "micronet.playground", "--no-browser", "--port", "0",
                             "--max-sessions", str(n)], stdout=subprocess.PIPE, text=True)
    stop = threading.Event()
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        base = proc.stdout.readline().split()[2] if ready else ""
        sids = [_call(base, "POST", "api/sessions", {})["session"] for _ in range(n)]
        viewers = [threading.Thread(target=_view, args=(base, sid, stop), daemon=True) for sid in sids]
        for viewer in viewers:
            viewer.start()
        for sid in sids:
            _call(base, "POST", f"api/sessions/{sid}/play", {"speed": pace})
        time.sleep(3)  # warm up
        start = [(_call(base, "GET", f"api/sessions/{sid}")["epoch"], time.monotonic()) for sid in sids]
        time.sleep(seconds)
        end = [(_call(base, "GET", f"api/sessions/{sid}")["epoch"], time.monotonic()) for sid in sids]
        return [(e1 - e0) / (t1 - t0) for (e0, t0), (e1, t1) in zip(start, end)]
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=15)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("counts", type=int, nargs="+", help="numbers of sessions to try")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per count")
    parser.add_argument("--pace", type=float, default=10.0, help="epochs a second each session asks for")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()}")
    for n in args.counts:
        rates = measure(n, args.seconds, args.pace)
        print(f"{n:3d} sessions: epochs/s per session min {min(rates):.1f}, mean {sum(rates) / n:.1f}, "
              f"max {max(rates):.1f}; load average now {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
