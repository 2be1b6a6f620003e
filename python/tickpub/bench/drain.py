"""A live subscriber in another process, for the benchmarks that publish to one.

``python -m tickpub.bench.drain URL CHANNEL PARENT_PID`` subscribes to ``CHANNEL``
with redis-py, prints ``ready``, and reads every message without decoding it. When a
sync marker arrives it prints how many messages came since the previous marker. It
exits when its parent process is gone, or when the server closes its connection (a
server drops a subscriber whose output buffer passes ``client-output-buffer-limit``).

With hiredis installed the messages are read from the subscription's socket by a
hiredis reader: redis-py's ``get_message`` reads about 120,000 small messages a
second, fewer than ``publish_many`` sends, and the server would buffer the
difference. Without hiredis ``get_message`` is used, and a run with small messages
spends longer waiting for the subscriber to catch up.

:class:`Drain` runs that process from the benchmark and talks to it.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence

import redis
import redis.client

from tickpub._process import PythonChild

__all__ = ["Drain", "DrainError"]

SYNC_MARKER = b"tickpub-bench-sync "
_IDLE_POLL = 0.5
_START_TIMEOUT = 30.0
_READ_SIZE = 1 << 20


class DrainError(RuntimeError):
    """The subscriber process failed to start, stopped answering, or exited."""


class _ParentGone(Exception):
    """The benchmark that started this process has exited."""


def _subscribe(
    client: redis.Redis, channel: str, alive: Callable[[], bool]
) -> redis.client.PubSub:
    # The caller keeps the client: once it is collected, redis-py disconnects its
    # pool, and the subscription's socket with it.
    pubsub: redis.client.PubSub = client.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(channel)
    while pubsub.get_message(timeout=_IDLE_POLL) is None:
        if not alive():
            raise _ParentGone
    return pubsub


def _hiredis_payloads(
    pubsub: redis.client.PubSub, alive: Callable[[], bool]
) -> Iterator[bytes] | None:
    """The payloads read straight from the subscription's socket, or None when
    hiredis or the socket is not available."""
    try:
        import hiredis
    except ImportError:
        return None
    connection = pubsub.connection
    sock: socket.socket | None = getattr(connection, "_sock", None)
    if sock is None:
        return None

    def payloads() -> Iterator[bytes]:
        reader = hiredis.Reader()
        buffer = bytearray(_READ_SIZE)
        sock.settimeout(_IDLE_POLL)
        while True:
            try:
                size = sock.recv_into(buffer)
            except TimeoutError:
                if not alive():
                    return
                continue
            if size == 0:
                raise redis.ConnectionError("the server closed the subscription")
            # hiredis reads any buffer; its stub names only str and bytes.
            reader.feed(buffer, 0, size)  # type: ignore[arg-type]
            while (reply := reader.gets()) is not False:
                if reply[0] == b"message":
                    yield reply[2]

    return payloads()


def _redis_py_payloads(
    pubsub: redis.client.PubSub, alive: Callable[[], bool]
) -> Iterator[bytes]:
    while True:
        message = pubsub.get_message(timeout=_IDLE_POLL)
        if message is None:
            if not alive():
                return
        elif message["type"] == "message":
            yield message["data"]


def _serve(url: str, channel: str, parent: int) -> None:
    def alive() -> bool:
        return os.getppid() == parent

    client = redis.Redis.from_url(url)
    pubsub = _subscribe(client, channel, alive)
    payloads = _hiredis_payloads(pubsub, alive) or _redis_py_payloads(pubsub, alive)
    print("ready", flush=True)

    received = 0
    for data in payloads:
        if data.startswith(SYNC_MARKER):
            print(data[len(SYNC_MARKER) :].decode(), received, flush=True)
            received = 0
        else:
            received += 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the subscriber until the parent process or the server is gone.

    Args:
        argv: ``[URL, CHANNEL, PARENT_PID]``; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 when the parent went away, 1 when the server did.
    """
    url, channel, parent = argv if argv is not None else sys.argv[1:]
    try:
        _serve(url, channel, int(parent))
    except (_ParentGone, KeyboardInterrupt):
        return 0
    except (redis.ConnectionError, OSError) as err:
        print(
            f"disconnected from the server ({err}); a server drops a subscriber "
            "whose output buffer passes its pubsub client-output-buffer-limit",
            file=sys.stderr,
        )
        return 1
    return 0


class Drain(PythonChild):
    """The subscriber process, subscribed once the constructor returns.

    Use it as a context manager, or call :meth:`stop`: the process is terminated
    (killed if it lingers). Should the benchmark die without stopping it, the
    process notices its parent is gone within half a second and exits.
    """

    def __init__(self, url: str, channel: str, client: redis.Redis) -> None:
        """Start the process and wait until it is subscribed.

        Args:
            url: the server's URL.
            channel: the channel to subscribe to.
            client: a redis-py client of the same server, to publish sync markers.

        Raises:
            DrainError: the process exited or was not subscribed in 30 seconds.
        """
        self.channel = channel
        self.client = client
        self._sequence = 0
        self._buffer = b""
        super().__init__("tickpub.bench.drain", [url, channel, str(os.getpid())])
        try:
            line = self._readline(_START_TIMEOUT)
        except TimeoutError:
            self.stop()
            raise DrainError(
                f"the subscriber process was not subscribed in {_START_TIMEOUT:.0f}s"
            ) from None
        except BaseException:
            self.stop()
            raise
        if line != "ready":
            self.stop()
            raise DrainError(f"the subscriber process said {line!r}")

    def sync(self, timeout: float = 120.0) -> int:
        """Wait until the subscriber has read everything published so far.

        A marker is published, again every second in case one was lost, until the
        subscriber reports it.

        Args:
            timeout: seconds to wait for the subscriber to catch up.

        Returns:
            How many messages (markers excluded) it received since the previous
            sync.

        Raises:
            DrainError: it did not catch up in time, or exited.
        """
        self._sequence += 1
        expected = str(self._sequence)
        marker = SYNC_MARKER + expected.encode()
        deadline = time.monotonic() + timeout
        while True:
            self.client.publish(self.channel, marker)
            left = deadline - time.monotonic()
            if left <= 0:
                raise DrainError(f"the subscriber did not catch up in {timeout:.0f}s")
            try:
                line = self._readline(min(1.0, left))
            except TimeoutError:
                continue
            # Stale answers to markers published again are skipped.
            sequence, received = line.split()
            if sequence == expected:
                return int(received)

    def _readline(self, timeout: float) -> str:
        stdout = self.stdout
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([stdout], [], [], max(0.0, left))
            if not ready:
                raise TimeoutError("no answer from the subscriber process")
            chunk = os.read(stdout.fileno(), 4096)
            if not chunk:
                raise DrainError(
                    f"the subscriber process exited: {self.exit_summary()}"
                )
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode().strip()


if __name__ == "__main__":
    sys.exit(main())
