"""Test suite. Hypothesis runs without deadlines: CI machines have 2 busy cores, and
speed is measured in benches/, never asserted in tests."""

from hypothesis import settings

settings.register_profile("acechart", deadline=None, print_blob=True)
settings.load_profile("acechart")
