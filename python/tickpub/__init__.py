"""tickpub: fast, safe msgpack-numpy publishing to Redis pub/sub.

The codec and the Redis connection are native (Rust, through PyO3); the publisher and
subscriber classes keep the API of popoto's pub/sub mixins.
"""

from tickpub._native import (
    Connection,
    ConnectionError,
    DecodeError,
    EncodeError,
    MessageTooLargeError,
    ServerError,
    TickpubError,
    __version__,
    connect,
    packb,
    unpackb,
)

__all__ = [
    "Connection",
    "ConnectionError",
    "DecodeError",
    "EncodeError",
    "MessageTooLargeError",
    "ServerError",
    "TickpubError",
    "__version__",
    "connect",
    "packb",
    "unpackb",
]
