"""Shared test settings: hypothesis draws the same examples on every run (seeded, as all randomness here)."""

import signal

import pytest
from hypothesis import settings

settings.register_profile("micronet", derandomize=True, database=None, deadline=None)
settings.load_profile("micronet")


@pytest.fixture
def deadline():
    """Fail, rather than hang, a check that blocks (a FIFO waiting for a writer): 30 s at most."""

    def expire(signum, frame):
        raise TimeoutError("blocked: the file was not refused at once")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
