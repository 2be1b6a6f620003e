"""The process's default server: where publishers and subscribers go unless told.

The default is ``REDIS_URL`` (read when the first connection is made, not at import),
or ``redis://127.0.0.1:6379/0`` when it is unset, until :func:`configure` names
another. The native connection is opened lazily on the first publish and shared by
every publisher without a connection of its own; it is dropped in a child process
after ``fork()``, so the child opens its own on its first publish.
"""

from __future__ import annotations

import os
import threading
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

from tickpub._native import Connection, connect

FALLBACK_URL = "redis://127.0.0.1:6379/0"

# Options of tickpub.connect that redis-py's client takes under the same name.
_REDIS_PY_OPTIONS = (
    "username",
    "password",
    "db",
    "client_name",
    "socket_connect_timeout",
    "socket_timeout",
)
_REDIS_PY_SSL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
# Options of tickpub.connect that redis-py does not know: left out of the URL's query
# too, so that one REDIS_URL serves both.
_NATIVE_ONLY_OPTIONS = frozenset({"retry_attempts", "retry_backoff", "busy_poll"})

_lock = threading.Lock()
_url: str | None = None
_options: dict[str, Any] = {}
_connection: Connection | None = None


def configure(url: str | None = None, **options: Any) -> None:
    """Choose the server of every publisher and subscriber without one of its own.

    The current default connection, if any, is closed; the next publish opens a new
    one with these settings. Subscribers created afterwards use them as well.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL. None means ``REDIS_URL``,
            or ``redis://127.0.0.1:6379/0`` when that is unset.
        **options: Options of :func:`tickpub.connect` (``username``, ``password``,
            ``db``, ``client_name``, timeouts, TLS files, retries).

    Raises:
        TypeError: An option's name is not one :func:`tickpub.connect` knows; the
            check happens when the connection is opened, on the next publish.
    """
    global _url, _options, _connection
    with _lock:
        old, _connection = _connection, None
        _url = url
        _options = dict(options)
    if old is not None:
        old.close()


def default_url() -> str:
    """The default server's URL: the configured one, ``REDIS_URL`` or the fallback."""
    return _url or os.environ.get("REDIS_URL") or FALLBACK_URL


def default_connection() -> Connection:
    """The shared native connection to the default server, opened on first use.

    Raises:
        tickpub.ConnectionError: The server cannot be reached.
    """
    global _connection
    connection = _connection
    if connection is not None:
        return connection
    with _lock:
        if _connection is None:
            _connection = connect(default_url(), **_options)
        return _connection


def redis_client(url: str | None = None, **options: Any) -> redis.Redis:
    """A redis-py client for ``url`` (default: the default server) and its options.

    Options that only the native connection understands (``retry_attempts``,
    ``retry_backoff``, ``busy_poll``), as keywords or in the URL's query, are left
    out; TLS options are passed only for a ``rediss://`` URL, as redis-py
    refuses them otherwise.
    """
    if url is None:
        url, options = default_url(), {**_options, **options}
    url = _without_native_options(url)
    kwargs = {key: options[key] for key in _REDIS_PY_OPTIONS if key in options}
    if url.startswith("rediss://"):
        kwargs.update(
            (key, options[key]) for key in _REDIS_PY_SSL_OPTIONS if key in options
        )
    return redis.Redis.from_url(url, **kwargs)


def _without_native_options(url: str) -> str:
    """``url`` without the query options only the native connection understands."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key not in _NATIVE_ONLY_OPTIONS
    ]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _forget_after_fork() -> None:
    # The parent's connection belongs to the parent: the child must neither write
    # on it nor wait on a lock another thread held when the process forked.
    global _lock, _connection
    _lock = threading.Lock()
    _connection = None


os.register_at_fork(after_in_child=_forget_after_fork)
