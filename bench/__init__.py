"""The side-by-side benchmark harness: qqavatar next to nginx, a do-nothing floor and Flask.

Run it with `python bench/run.py` (see README "Benchmarks"). Nothing here is imported by
the service, and CI only runs its quick smoke test (tests/bench).
"""
