"""Reliability suites: crashes, fuzzed input, load and slow stores, each with a figures script.

Every suite is a pytest module (small numbers, part of the normal run) and a
script that prints a table of figures with bigger numbers::

    python -m tests.reliability.crash --kills 50
    python -m tests.reliability.fuzz --examples 2000
    python -m tests.reliability.load
    python -m tests.reliability.slow_store
"""
