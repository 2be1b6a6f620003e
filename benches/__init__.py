"""pytest-benchmark suite: every tickpub path against its pure-Python baseline.

Run everything (a few minutes)::

    python -m pytest benches --benchmark-columns=median,mean,ops,rounds

or only once each, as a quick check that every benchmark still works::

    python -m pytest benches --benchmark-disable -q

The ratios between the paths of each comparison, taken in the same run, are printed
after pytest-benchmark's tables, with the project's goals next to them, and stored in
each benchmark's ``extra_info`` (``--benchmark-json=FILE`` writes them out).
"""
