"""Encoding speed: tickpub.packb against msgpack-numpy, with ormsgpack for reference.

Run with::

    python -m pytest benches/bench_encode.py --benchmark-columns=median,mean,ops,rounds

Each payload is one pytest-benchmark group holding the three encoders. msgpack-numpy
is ``msgpack.packb`` after ``msgpack_numpy.patch()``, the baseline; ormsgpack with
``OPT_SERIALIZE_NUMPY`` writes arrays as msgpack lists, so its bytes differ and popoto
cannot read them: it is a speed reference only. Goals (tickpub vs msgpack-numpy):
tick >= 10x, numpy tick >= 25x, 16 MiB array >= 5x.
"""

from __future__ import annotations

from typing import Any

import msgpack_numpy
import pytest

from benches.ratios import Case, Ratios
from tickpub.bench.paths import BASELINES, PATHS, BenchPath
from tickpub.bench.payloads import PAYLOADS, Payload

ENCODERS = [path for path in PATHS if path.kind == "encode"]


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        pytest.param(payload, path, id=f"{payload.name}-{path.name}")
        for payload in PAYLOADS
        for path in ENCODERS
    ],
)
def test_encode(
    benchmark: Any, ratios: Ratios, payload: Payload, path: BenchPath
) -> None:
    """Time one encoder on one payload; tickpub's bytes must be msgpack-numpy's."""
    reason = path.unavailable()
    if reason is not None:
        pytest.skip(reason)
    operation = path.prepare(payload, None)
    expected = msgpack_numpy.packb(payload.message())
    case = Case(
        "encode", payload.name, path.name, BASELINES["encode"], 1, len(expected)
    )

    ratios.start(benchmark, case)
    data = benchmark(operation.fn, *operation.args)
    ratios.add(benchmark, case)

    assert isinstance(data, bytes)
    if path.name != "ormsgpack":
        assert data == expected
