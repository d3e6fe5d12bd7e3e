"""Benchmarks (``make bench``); never part of the tests. Each ``bench_*.py`` has ``main()``."""
