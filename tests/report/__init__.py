"""Tests of ``simulate.py report``: run, comparison and sweep folders, determinism, errors, browser."""
