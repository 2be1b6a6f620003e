"""tickpub: fast, safe msgpack-numpy publishing to Redis pub/sub.

The codec and the Redis connection are native (Rust, through PyO3); the publisher and
subscriber classes keep the API of popoto's pub/sub mixins.
"""

from tickpub._default import configure
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
from tickpub.publisher import Publisher, PublisherException
from tickpub.subscriber import Subscriber, SubscriberException

__all__ = [
    "Connection",
    "ConnectionError",
    "DecodeError",
    "EncodeError",
    "MessageTooLargeError",
    "Publisher",
    "PublisherException",
    "ServerError",
    "Subscriber",
    "SubscriberException",
    "TickpubError",
    "__version__",
    "configure",
    "connect",
    "packb",
    "unpackb",
]
