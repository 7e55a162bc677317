"""The playground's web server: a thin Starlette app over `Sessions`.

Every request is treated as hostile. The Host header must name this
server (DNS rebinding), state-changing requests and websockets must come
from a page this server served (the Origin check), bodies are small JSON
objects, and every setup goes through `setup_to_config` (the playground's
limits, then `parse_config`) before it touches a session: a refused
request answers 4xx with a message and changes nothing. The only files
served are the page's three, read from the package once at start-up.

    GET  /                                  the page (and /app.js, /style.css)
    GET  /api/options                       choices and limits for the controls
    POST /api/sessions                      a new session (body: a setup, or {})
    GET  /api/sessions/{id}                 its status, setup, epoch and metrics history
    PUT  /api/sessions/{id}/setup           a new setup: validated, then training starts over
    POST /api/sessions/{id}/play            body {"speed": epochs per second, or null for flat out}
    POST /api/sessions/{id}/pause|step|reset
    GET  /api/sessions/{id}/export          the YAML that `micronet-train` reproduces the session with
    GET  /api/sessions/{id}/model           the weights after the last epoch, as model.json's "parameters"
    WS   /api/sessions/{id}/live            frames: the server sends one, the page answers "drawn"
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import numbers
import re
import resource
import time
from collections.abc import Callable, Iterable
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from micronet.config import ConfigError
from micronet.data import DataError
from micronet.playground.sessions import DEFAULT_SPEED, IDLE_SECONDS, MAX_SESSIONS, Conflict, Session, Sessions
from micronet.playground.trainer import SetupError, Trainer, in_page_words, options, setup_to_config

__all__ = ["create_app", "LOOPBACK_HOSTS", "HEADER_TIMEOUT", "connection_cap", "guarded_protocol", "quiet_logs"]

log = logging.getLogger("micronet.playground")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY = 16 * 1024  # bytes: a setup is a few hundred
MAX_VIEWERS = 4  # websockets per session
MAX_SPEED = 1000.0  # epochs per second
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/style.css": ("style.css", "text/css; charset=utf-8")}
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Refused(Exception):
    """An error answer: status code and message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=_HEADERS)


def _ok(content, status: int = 200) -> JSONResponse:
    return JSONResponse(content, status_code=status, headers=_HEADERS)


def _host_name(host: str | None) -> str | None:
    """The name part of a Host header (`[::1]:8000` -> `[::1]`), lower-cased; None if malformed."""
    if not host:
        return None
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return None if end < 0 else host[: end + 1]
    return host.split(":", 1)[0] or None


class _CheckHost:
    """Refuse requests whose Host header names another server: a DNS-rebinding page cannot reach us."""

    sessions: Sessions  # set by create_app, for tests and the curious

    def __init__(self, app, hosts: Iterable[str] | None, any_address: bool = False):
        self.app = app
        self.hosts = None if hosts is None else {h.lower() for h in hosts}
        self.any_address = any_address  # also a bare IP address: no rebinding page can name one

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.hosts is not None:  # None: a wildcard bind
            headers = dict(scope["headers"])
            name = _host_name(headers.get(b"host", b"").decode("latin-1"))
            if name not in self.hosts and not (self.any_address and _is_address(name)):
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                hosts = ", ".join(sorted(self.hosts)) + (" and its IP addresses" if self.any_address else "")
                response = PlainTextResponse(f"unexpected Host header; this server answers to {hosts}", status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _is_address(name: str | None) -> bool:
    """True for an IP address as a Host header gives it (`192.168.1.5`, `[fe80::1]`)."""
    try:
        ipaddress.ip_address((name or "").strip("[]"))
    except ValueError:
        return False
    return True


def _same_origin(headers) -> bool:
    """True when the Origin header is this server's own (the page it served), as the Host header names it."""
    origin, host = headers.get("origin"), headers.get("host")
    return bool(origin and host) and origin == f"http://{host}"


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package: no request ever touches the file system."""
    package = resources.files("micronet.playground") / "static"
    return {path: (package.joinpath(name).read_bytes(), kind) for path, (name, kind) in _STATIC.items()}


async def _json_body(request: Request) -> object:
    """The request's JSON body ({} when empty), at most MAX_BODY bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise _Refused(413, f"the request body must be at most {MAX_BODY} bytes of JSON")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise _Refused(413, f"the request body must be at most {MAX_BODY} bytes of JSON")
    if not body.strip():
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise _Refused(415, f"the request body must be application/json, got {kind or 'no content type'}")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as e:
        raise _Refused(400, f"the request body is not valid JSON: {str(e)[:100]}") from None


def _speed(body: object) -> float | None:
    if not isinstance(body, dict) or set(body) - {"speed"}:
        raise _Refused(400, 'play takes {"speed": epochs per second} or {}, got ' + json.dumps(body)[:80])
    speed = body.get("speed", DEFAULT_SPEED)
    if speed is None:
        return None
    if isinstance(speed, bool) or not isinstance(speed, numbers.Real) or not math.isfinite(speed) \
            or not 0 < speed <= MAX_SPEED:  # type: ignore[operator]  # numbers.Real compares with int
        raise _Refused(400, f"speed must be a number of epochs per second in (0, {MAX_SPEED:g}] or null, "
                            f"got {json.dumps(speed)[:40]}")
    return float(speed)


async def _build_trainer(setup: object) -> Trainer:
    """A trainer for a setup, or 400 naming the problem in the page's words; built off the event loop."""
    try:
        config = setup_to_config(setup)
        return await asyncio.to_thread(Trainer, config)
    except (SetupError, ConfigError, DataError) as e:
        raise _Refused(400, in_page_words(str(e))) from None


def create_app(
    hosts: Iterable[str] | None = LOOPBACK_HOSTS,
    *,
    max_sessions: int = MAX_SESSIONS,
    idle_seconds: float = IDLE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    reap_every: float = 15.0,
    setup: dict | None = None,
    any_address: bool = False,
) -> _CheckHost:
    """The playground as an ASGI app. `hosts`: the names a Host header may give (None: any, for a wildcard bind).

    `any_address`: a Host header may also be a bare IP address (a classroom's `--host 0.0.0.0`).
    `setup`: what a new session with no setup of its own opens on (`micronet-playground CONFIG`).
    """
    sessions = Sessions(max_sessions, idle_seconds, clock)
    page_options = options()
    if setup is not None:
        page_options["default"] = setup
    static = _static_files()

    def session_of(request) -> Session:
        sid = request.path_params["sid"]
        session = sessions.get(sid) if _SESSION_ID.fullmatch(sid) else None
        if session is None:
            raise _Refused(404, "no such session (it may have been closed to make room for newer ones); "
                                "reload the page")
        return session

    def guarded(handler, state_changing: bool):
        async def endpoint(request: Request) -> Response:
            try:
                if state_changing and not _same_origin(request.headers):
                    host, origin = request.headers.get("host", ""), request.headers.get("origin")
                    raise _Refused(403, "cross-origin request refused: the Origin header must be this server's own "
                                        f"(http://{host}), got {origin!r}")
                return await handler(request)
            except _Refused as e:
                return _error(e.status, str(e))
        return endpoint

    async def page(request: Request) -> Response:
        body, kind = static[request.url.path]
        return Response(body, media_type=kind, headers=_HEADERS)

    async def get_options(request):
        return _ok(page_options)

    async def create(request):
        body = await _json_body(request)
        trainer = await _build_trainer(setup if body == {} and setup is not None else body)
        session = await sessions.create(trainer)
        return _ok(session.summary(history=True), 201)

    async def get_session(request):
        session = session_of(request)
        session.touch()
        return _ok(session.summary(history=True))

    async def put_setup(request):
        session = session_of(request)
        session.touch()
        trainer = await _build_trainer(await _json_body(request))
        await session.replace(trainer)
        return _ok(session.summary(history=True))

    def action(name):
        async def act(request):
            session = session_of(request)
            session.touch()
            body = await _json_body(request)
            try:
                if name == "play":
                    await session.play(_speed(body))
                else:
                    if body != {}:
                        raise _Refused(400, f"{name} takes no parameters, got {json.dumps(body)[:80]}")
                    if name == "pause":
                        await session.pause()
                    elif name == "step":
                        await session.step()
                    else:  # reset: the same setup from epoch 0 (same seed: same data and first weights)
                        trainer = session.trainer
                        await session.replace(await asyncio.to_thread(Trainer, trainer.config, trainer.data))
            except Conflict as e:
                raise _Refused(409, str(e)) from None
            return _ok(session.summary())
        return act

    async def export(request):
        session = session_of(request)
        session.touch()
        try:
            text, dataset, epoch = await session.between_epochs(
                lambda t: (t.export_yaml(), t.config.dataset.name, t.epoch))
        except SetupError as e:
            error = session.trainer.error
            if error is not None:  # diverged before its first epoch: play and step cannot help
                raise _Refused(409, f"nothing to export: the session diverged before finishing an epoch ({error}); "
                                    "reset it, or change the setup (a smaller learning rate) and train again") from None
            raise _Refused(409, str(e)) from None
        name = f"playground-{dataset}-epoch{epoch}.yaml"
        return Response(text, media_type="application/yaml",
                        headers={**_HEADERS, "Content-Disposition": f'attachment; filename="{name}"'})

    async def model(request):
        session = session_of(request)
        session.touch()
        return _ok(await session.between_epochs(lambda t: {"epoch": t.epoch, "parameters": t.state_dict()}))

    async def live(ws: WebSocket):
        sid = ws.path_params["sid"]
        session = sessions.get(sid) if _SESSION_ID.fullmatch(sid) else None
        if not _same_origin(ws.headers) or session is None or session.viewers >= MAX_VIEWERS:
            await ws.close(code=1008)  # before accept: the handshake is refused
            return
        session.touch()
        await ws.accept()
        session.viewers += 1
        try:
            await _stream(ws, session)
        except WebSocketDisconnect:
            pass
        finally:
            session.viewers -= 1

    routes: list[BaseRoute] = [Route(path, page) for path in static]
    routes += [
        Route("/api/options", get_options),
        Route("/api/sessions", guarded(create, True), methods=["POST"]),
        Route("/api/sessions/{sid}", guarded(get_session, False)),
        Route("/api/sessions/{sid}/setup", guarded(put_setup, True), methods=["PUT"]),
        *(Route(f"/api/sessions/{{sid}}/{name}", guarded(action(name), True), methods=["POST"])
          for name in ("play", "pause", "step", "reset")),
        Route("/api/sessions/{sid}/export", guarded(export, False)),
        Route("/api/sessions/{sid}/model", guarded(model, False)),
        WebSocketRoute("/api/sessions/{sid}/live", live),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async def reap():
            while True:
                await asyncio.sleep(reap_every)
                await sessions.reap()

        reaper = asyncio.create_task(reap())
        try:
            yield
        finally:
            reaper.cancel()
            await sessions.close_all()

    app = _CheckHost(Starlette(routes=routes, lifespan=lifespan), hosts, any_address)
    app.sessions = sessions  # for tests and the curious
    return app


async def _received_text(ws: WebSocket) -> str:
    """The page's next text message; a binary frame closes the socket (1003) and is logged in one line."""
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text")
    if text is None:
        log.warning("closed a websocket that sent a binary frame; the page sends text")
        await ws.close(code=1003)
        raise WebSocketDisconnect(1003)
    return text


async def _stream(ws: WebSocket, session: Session) -> None:
    """Send a frame whenever the session has news and the page has drawn the last one.

    The page answers each frame with a message when it has drawn it, so at
    most one frame is in flight: a slow page gets fewer frames, never a
    backlog. A frame carries the history rows the page has not seen, and
    the scene (points, extent, layer sizes) when the setup changed.
    """
    sent_key, sent_rows = None, 0
    drawn = True
    receiving = asyncio.ensure_future(_received_text(ws))
    try:
        while True:
            changed = session.changed()
            if session.closed:
                await ws.send_text(json.dumps({"type": "closed", "note": session.note}))
                await ws.close()
                return
            if drawn and session.key() != sent_key:
                text, sent_key, sent_rows = await session.render(None if sent_key is None else sent_key[0], sent_rows)
                await ws.send_text(text)
                drawn = False
            waiting = asyncio.ensure_future(changed.wait())
            done, _ = await asyncio.wait({receiving, waiting}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            if receiving in done:
                receiving.result()  # raises WebSocketDisconnect when the page has gone
                drawn = True
                receiving = asyncio.ensure_future(_received_text(ws))
    finally:
        receiving.cancel()


# ----- under load: slow clients, too many connections, noisy logs --------------------

HEADER_TIMEOUT = 10.0  # seconds a client has to send a whole request head; uvicorn itself waits forever
LOG_EVERY = 10.0  # seconds: at most one line per kind of log message in that time


def connection_cap() -> int:
    """Open connections allowed at once: well below the file-descriptor limit, so accept() never runs out."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1000
    return max(8, min(1000, (soft - 64) // 2))


def guarded_protocol(max_connections: int | None = None, header_timeout: float = HEADER_TIMEOUT) -> type:
    """uvicorn's h11 protocol, with a deadline for the request head and a cap on open connections.

    A connection that has not sent a whole request head within
    `header_timeout` seconds is closed. When a new connection would pass the
    cap, the oldest connection that is waiting for a request (a slow or idle
    client) is closed to make room; only when none is waiting is the new one
    closed. So idle connections cannot deny the page to a client that sends
    its request at once.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    cap = connection_cap() if max_connections is None else max_connections

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self.opened = self.loop.time()
            self.deadline = self.loop.call_later(header_timeout, self.head_too_slow)
            if len(self.connections) > cap:
                waiting: list = [c for c in self.connections if c is not self and _waiting(c)]
                oldest = min(waiting, key=lambda c: c.opened, default=self)
                oldest.transport.close()
                log.warning("over %d open connections: closed the oldest one still waiting for a request", cap)

        def head_too_slow(self):
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()
                log.warning("closed a connection that sent no whole request head in %g s", header_timeout)

        def connection_lost(self, exc):
            self.deadline.cancel()
            super().connection_lost(exc)

    return GuardedH11Protocol


def _waiting(connection) -> bool:
    """A guarded HTTP connection with no request in progress: its head not yet sent, or idle after a response."""
    if not hasattr(connection, "opened") or connection.transport.is_closing():
        return False
    cycle = connection.cycle
    return cycle is None or cycle.response_complete


class _RateLimited(logging.Filter):
    """One line per kind of message, at most once per LOG_EVERY seconds, without tracebacks."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.clock = clock
        self.last: dict[tuple[str, str], float] = {}
        self.dropped: dict[tuple[str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = (record.name, str(record.msg))
        now = self.clock()
        if now - self.last.get(kind, -math.inf) < LOG_EVERY:
            self.dropped[kind] = self.dropped.get(kind, 0) + 1
            return False
        self.last[kind] = now
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
            record.args = None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        dropped = self.dropped.pop(kind, 0)
        if dropped:
            record.msg, record.args = f"{record.getMessage()} (and {dropped} more like it)", None
        return True


def quiet_logs(clock: Callable[[], float] = time.monotonic) -> logging.Filter:
    """Rate-limit the server's logs (uvicorn's, asyncio's, the playground's): one line each, not a flood.

    Under a flood of connections asyncio logs a traceback per failed
    accept(); this keeps a line per kind of message every LOG_EVERY seconds.
    Returns the filter (installed on each logger).
    """
    limiter = _RateLimited(clock)
    for name in ("uvicorn.error", "asyncio", "micronet.playground"):
        logging.getLogger(name).addFilter(limiter)
    return limiter
