"""Shared test settings: hypothesis draws the same examples on every run (seeded, as all randomness here)."""

from hypothesis import settings

settings.register_profile("micronet", derandomize=True, database=None, deadline=None)
settings.load_profile("micronet")
