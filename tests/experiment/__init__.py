"""Experiment workflow tests: compare, sweep, executors, external policies.

Shared pieces: ``MMC`` and ``TINY`` (a 10-minute M/M/8 queue, ~0.1 s a run) and
``DEFAULT_TINY`` (the four-region default scenario cut to 30 minutes).
"""
from tests.conftest import SCENARIOS

MMC = str(SCENARIOS / "validation" / "mmc.yaml")
TINY = ["duration=10m", "warmup=1m"]
DEFAULT = str(SCENARIOS / "default.yaml")
DEFAULT_TINY = ["duration=30m", "warmup=5m"]


def cli_sets(sets):
    """``["a=1", "b=2"]`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [arg for s in sets for arg in ("--set", s)]
