"""The side-by-side benchmark harness: qqavatar next to nginx, a do-nothing floor and Flask.

Run it with `python bench/run.py` (see docs/operations.md, "Benchmarks"). Nothing here is
imported by the service, and CI only runs its quick smoke test (tests/bench).
"""
