"""Browser sessions: one trainer each, played, paused and stepped without blocking the server.

A session's epochs run in a worker thread, one at a time under the
session's lock, so a request never sees (or changes) a run half-way through
an epoch: pause waits for the epoch in progress to end, and every epoch is
whole, which keeps the session equal to the exported run. Viewers wait on
`changed()` and draw the latest epoch; they never slow training down.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from collections.abc import Callable
from typing import TypeVar

from micronet.playground.trainer import Trainer, config_setup

__all__ = ["DEFAULT_SPEED", "IDLE_SECONDS", "MAX_SESSIONS", "Conflict", "Session", "Sessions"]

MAX_SESSIONS = 8
IDLE_SECONDS = 600.0  # a session without requests for this long stops training
DEFAULT_SPEED = 10.0  # epochs per second while playing; None: as fast as the machine goes


_T = TypeVar("_T")


class Conflict(Exception):
    """A request that cannot apply to the session as it is (a diverged run, nothing to export)."""


class Session:
    """One browser tab's trainer, with play/pause/step/replace as coroutines."""

    def __init__(self, sid: str, trainer: Trainer, clock: Callable[[], float],
                 turns: asyncio.Semaphore | None = None) -> None:
        self.id = sid
        self.trainer = trainer
        self.version = 0  # bumped whenever the trainer is replaced (new setup, reset)
        self.speed: float | None = DEFAULT_SPEED
        self.note = ""  # why training stopped, when the user did not stop it
        self.closed = False
        self._clock = clock
        self.last_seen = clock()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()  # set by pause, to end a play loop's wait between epochs
        self.viewers = 0
        self._turns = turns or asyncio.Semaphore(1)  # shared by the server's sessions: see Sessions

    @property
    def playing(self) -> bool:
        return self._task is not None

    def touch(self) -> None:
        """A request from the user: the session is not idle."""
        self.last_seen = self._clock()

    def changed(self) -> asyncio.Event:
        """An event set at the next change (capture it before reading the state you compare against)."""
        return self._changed

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    @property
    def status(self) -> str:
        if self.trainer.error is not None:
            return "diverged"
        return "playing" if self.playing else "paused"

    def summary(self, history: bool = False) -> dict:
        """The session's state as the API reports it."""
        trainer = self.trainer
        out = {
            "session": self.id,
            "version": self.version,
            "status": self.status,
            "epoch": trainer.epoch,
            "speed": self.speed,
            "setup": config_setup(trainer.config),
            "metrics": trainer.history[-1] if trainer.history else None,
            "error": trainer.error,
            "note": self.note,
        }
        if history:
            out["history"] = list(trainer.history)
        return out

    async def between_epochs(self, read: Callable[[Trainer], _T]) -> _T:
        """`read(trainer)` while no epoch runs, so that what it reads belongs to one epoch."""
        async with self._lock:
            return read(self.trainer)

    def key(self) -> tuple:
        """What a viewer has seen when it has seen this: a new key means a new frame to send."""
        return (self.version, self.trainer.epoch, self.status, self.note)

    async def render(self, seen_version: int | None, seen_rows: int) -> tuple[str, tuple, int]:
        """A frame message (JSON text) for a viewer that has seen `seen_rows` rows of trainer `seen_version`.

        Returns the text, the key it shows, and the number of rows the viewer
        has then. Built under the lock, between epochs, so the frame, its
        metrics and its epoch agree, and the worker thread does not fight a
        training thread for the interpreter (that made frames 4x slower).
        """
        async with self._lock:
            trainer, summary, key = self.trainer, self.summary(), self.key()
            new_scene = self.version != seen_version
            first = 0 if new_scene else seen_rows

            def build():
                rows = trainer.history[first:]
                message = {"type": "frame", **summary, "rows_from": first, "rows": rows, **trainer.frame()}
                if new_scene:
                    message["scene"] = trainer.scene()
                return json.dumps(message), first + len(rows)

            text, rows = await asyncio.to_thread(build)
            return text, key, rows

    async def play(self, speed: float | None) -> None:
        if self.trainer.error is not None:
            raise Conflict(f"{self.trainer.error}; reset or change the setup to start again")
        self.speed, self.note = speed, ""
        if self._task is None:
            self._task = asyncio.create_task(self._play())
        self._notify()

    async def _play(self) -> None:
        """Epochs until paused: the loop ends as soon as it is no longer the session's play task."""
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        try:
            while self._task is me and self.trainer.error is None:
                started = loop.time()
                async with self._turns, self._lock:
                    if self._task is not me:
                        break
                    await asyncio.to_thread(self.trainer.train_epoch)
                self._notify()
                wait = 0.0 if self.speed is None else 1.0 / self.speed - (loop.time() - started)
                await asyncio.sleep(0)  # let viewers and requests in between epochs
                if wait > 0 and self._task is me:
                    try:  # keep the pace, but wake at once when paused
                        await asyncio.wait_for(self._wake.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
        finally:
            if self._task is me:  # it ended by itself (divergence)
                self._task = None
            self._notify()

    async def pause(self, note: str = "") -> None:
        """Stop playing; returns once the epoch in progress has ended."""
        task, self._task = self._task, None
        self._wake.set()
        self._wake = asyncio.Event()
        if task is not None:
            await task
        if note:
            self.note = note
        self._notify()

    async def step(self) -> None:
        """Exactly one more epoch (pausing first if playing)."""
        await self.pause()
        if self.trainer.error is not None:
            raise Conflict(f"{self.trainer.error}; reset or change the setup to start again")
        async with self._turns, self._lock:
            await asyncio.to_thread(self.trainer.train_epoch)
        self._notify()

    async def replace(self, trainer: Trainer) -> None:
        """Start over with a new trainer (already built, so a bad setup never gets here)."""
        await self.pause()
        async with self._lock:
            self.trainer = trainer
            self.version += 1
            self.note = ""
        self._notify()

    async def close(self, note: str) -> None:
        await self.pause(note)
        self.closed = True
        self._notify()


class Sessions:
    """At most `limit` sessions; a new one evicts the one idle longest; idle ones stop training.

    The fair share: every epoch of every session takes a turn from one
    first-come, first-served queue, and at most `slots` epochs run at once
    (one per core). A tab playing flat out queues again behind everyone
    waiting after each epoch, so each playing session gets one epoch per
    round: none is starved, and a slow epoch delays the others by at most
    one epoch of its own.
    """

    def __init__(self, limit: int = MAX_SESSIONS, idle_seconds: float = IDLE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, slots: int | None = None) -> None:
        self.limit = limit
        self.slots = slots or os.cpu_count() or 1
        self._turns = asyncio.Semaphore(self.slots)  # asyncio's semaphore serves its waiters in order
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    async def create(self, trainer: Trainer) -> Session:
        while len(self._sessions) >= self.limit:
            oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
            del self._sessions[oldest.id]
            await oldest.close("this session was closed to make room for a newer one; reload the page")
        session = Session(secrets.token_urlsafe(16), trainer, self.clock, self._turns)
        self._sessions[session.id] = session
        return session

    async def reap(self) -> list[Session]:
        """Stop the trainers of sessions idle for `idle_seconds`; returns them."""
        now = self.clock()
        stopped = []
        for session in list(self._sessions.values()):
            if session.playing and now - session.last_seen >= self.idle_seconds:
                minutes = self.idle_seconds / 60
                await session.pause(f"stopped after {minutes:g} idle minutes; press play to go on")
                stopped.append(session)
        return stopped

    async def close_all(self) -> None:
        for session in list(self._sessions.values()):
            await session.close("the server stopped")
        self._sessions.clear()
