"""The reference encoder: msgpack with msgpack-numpy's ``encode`` hook, exactly what
``msgpack.packb`` does after ``msgpack_numpy.patch()``, without patching globally."""

from __future__ import annotations

from typing import Any

import msgpack
import msgpack_numpy


def reference_packb(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, default=msgpack_numpy.encode)
    return packed


def reference_unpackb(data: bytes) -> Any:
    return msgpack.unpackb(data, object_hook=msgpack_numpy.decode)
