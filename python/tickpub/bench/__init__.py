"""tickpub's own benchmark: the ``tickpub bench`` command and its parts.

- :mod:`~tickpub.bench.payloads`: the messages, from a four-field tick to a 16 MiB
  frame.
- :mod:`~tickpub.bench.paths`: the ways of encoding and publishing that are compared,
  with the pure-Python baseline of each kind.
- :mod:`~tickpub.bench.timing`: the timing loop.
- :mod:`~tickpub.bench.drain`: a live subscriber in another process.
- :mod:`~tickpub.bench.runner`: measures every selected path on every selected
  payload and computes the ratios against the baselines.
- :mod:`~tickpub.bench.report`: the environment, the table and the JSON file.
- :mod:`~tickpub.bench.plot`: the bar chart of the ratios (needs matplotlib).
- :mod:`~tickpub.bench.command`: the ``tickpub bench`` command line.

This package imports none of its modules, so that the subscriber process started as
``python -m tickpub.bench.drain`` loads only what it uses.
"""
