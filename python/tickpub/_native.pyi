"""Type stubs for tickpub's native module; the public names are re-exported by
``tickpub``."""

import builtins

__version__: str

class TickpubError(Exception):
    """Base class of every error tickpub raises."""

class EncodeError(TickpubError, TypeError, ValueError):
    """A value cannot be encoded; nothing was written.

    Attributes:
        path: where the value sits in the message, e.g. ``data['frames'][3]``.
    """

    path: str

class DecodeError(TickpubError, ValueError):
    """Bytes that are not a message tickpub decodes."""

class ConnectionError(TickpubError, builtins.ConnectionError):
    """The connection to the server failed.

    Attributes:
        kind: 'refused', 'timeout', 'dropped', 'auth', 'tls', 'protocol' or 'config'.
        retry_safe: True when no byte of the failed command reached the server.
    """

    kind: str
    retry_safe: bool

class ServerError(TickpubError):
    """The server answered with an error reply.

    Attributes:
        code: the reply's first word, e.g. ``'NOPERM'``.
    """

    code: str

class MessageTooLargeError(TickpubError, ValueError):
    """The message exceeds the server's ``proto-max-bulk-len``; nothing was sent."""
