"""A loopback proxy for connection tests: TLS (or plain TCP) in front of a server.

The TLS tests need a TLS endpoint on every machine, also where the server binary was
built without TLS. :class:`ForwardingProxy` terminates TLS with the standard library's
``ssl`` module and forwards the decrypted bytes to the plain server, so the tickpub
client does its TLS handshake, certificate checks and client authentication against
a real TLS stack. Without a context it forwards plain TCP, and
:attr:`ForwardingProxy.replace_replies` then makes it answer with bytes of the test's
choosing, as a broken server or a middlebox would.

Every accepted connection gets one thread that waits on both sockets with
``select``, at most :data:`POLL` seconds at a time, so :meth:`ForwardingProxy.stop`
ends all of them within about that long.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
import time
from types import TracebackType
from typing import Any, Self

POLL = 0.05
"""Longest wait of a proxy thread before it checks whether it should stop."""

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a client has to complete its TLS handshake."""

_CHUNK = 64 * 1024
_BUFFER_LIMIT = 4 * 1024 * 1024
_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError)


def server_context(cert: Any, client_ca: Any = None) -> ssl.SSLContext:
    """A server-side TLS context presenting ``cert``.

    Args:
        cert: a ``trustme.LeafCert``: the certificate and key the proxy presents.
        client_ca: a ``trustme.CA``; when given, clients must present a certificate
            it signed (``ssl.CERT_REQUIRED``).

    Returns:
        The context, for :class:`ForwardingProxy`.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    if client_ca is not None:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class ForwardingProxy:
    """Listens on a free port of 127.0.0.1 and forwards to ``upstream`` both ways.

    Use it as a context manager, or call :meth:`start` and then :meth:`stop`.

    Attributes:
        port: the port it listens on.
        accepted: how many connections it accepted.
        handshake_errors: the error of every TLS handshake that failed, as text;
            read it with :meth:`wait_for_handshake_errors`.
        replace_replies: when not None, every chunk the upstream server sends is
            dropped and this is sent to the client instead.
        reply_budget: when not None, how many more bytes from the upstream server
            reach the client; once they are spent and sent, the proxy drops the
            connection, as a server or a network that fails mid-stream would.
    """

    def __init__(
        self, upstream: tuple[str, int], context: ssl.SSLContext | None = None
    ) -> None:
        """Bind the listening socket; nothing is accepted before :meth:`start`.

        Args:
            upstream: host and port of the plain TCP server to forward to.
            context: a server-side TLS context (see :func:`server_context`); None
                forwards plain TCP.
        """
        self.upstream = upstream
        self.context = context
        self.accepted = 0
        self.handshake_errors: list[str] = []
        self.replace_replies: bytes | None = None
        self.reply_budget: int | None = None
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._failed = threading.Condition(self._lock)
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"proxy-{self.port}", daemon=True
        )

    def start(self) -> Self:
        """Start accepting connections.

        Returns:
            The proxy itself.
        """
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Close every connection, stop listening and join the threads.

        Safe to call twice.

        Raises:
            RuntimeError: a proxy thread did not end within 10 seconds.
        """
        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join(timeout=10)
        with self._lock:
            threads = [self._acceptor, *self._threads]
        for thread in threads[1:]:
            thread.join(timeout=10)
        self._listener.close()
        alive = [thread.name for thread in threads if thread.is_alive()]
        if alive:
            raise RuntimeError(f"proxy threads still running after stop: {alive}")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            readable, _, _ = select.select([self._listener], [], [], POLL)
            if not readable:
                continue
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            with self._lock:
                self.accepted += 1
                thread = threading.Thread(
                    target=self._serve,
                    args=(client,),
                    name=f"proxy-{self.port}-{self.accepted}",
                    daemon=True,
                )
                self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket) -> None:
        peer: socket.socket = client
        upstream: socket.socket | None = None
        try:
            client.setblocking(False)
            if self.context is not None:
                peer = self.context.wrap_socket(
                    client, server_side=True, do_handshake_on_connect=False
                )
                if not self._handshake(peer):
                    return
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.setblocking(False)
            self._pump(peer, upstream)
        except OSError:
            # One side went away abruptly; the other is closed below, as a proxy
            # that lost a connection would do.
            pass
        finally:
            peer.close()
            client.close()
            if upstream is not None:
                upstream.close()

    def _handshake(self, tls: socket.socket) -> bool:
        """Complete the server side of the TLS handshake; False when it failed."""
        assert isinstance(tls, ssl.SSLSocket)
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        while not self._stopping.is_set() and time.monotonic() < deadline:
            try:
                tls.do_handshake()
                return True
            except ssl.SSLWantReadError:
                select.select([tls], [], [], POLL)
            except ssl.SSLWantWriteError:
                select.select([], [tls], [], POLL)
            except OSError as err:
                self._handshake_failed(str(err))
                return False
        self._handshake_failed("handshake did not complete in time")
        return False

    def _handshake_failed(self, error: str) -> None:
        with self._failed:
            self.handshake_errors.append(error)
            self._failed.notify_all()

    def wait_for_handshake_errors(self, count: int, timeout: float = 10.0) -> list[str]:
        """Wait until ``count`` TLS handshakes have failed.

        The client may see a failure before the proxy's thread has recorded it.

        Args:
            count: how many failed handshakes to wait for.
            timeout: seconds to wait at most.

        Returns:
            A copy of :attr:`handshake_errors`: shorter than ``count`` only when the
            time ran out, longer when more handshakes failed.
        """
        with self._failed:
            self._failed.wait_for(
                lambda: len(self.handshake_errors) >= count, timeout=timeout
            )
            return list(self.handshake_errors)

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Forward until either side closes (after flushing what it sent last)."""
        to_upstream = bytearray()
        to_client = bytearray()
        client_open = upstream_open = True
        while not self._stopping.is_set():
            if (not client_open and not to_upstream) or (
                not upstream_open and not to_client
            ):
                return
            if self.reply_budget == 0 and not to_client:
                return
            readers = []
            if client_open and len(to_upstream) < _BUFFER_LIMIT:
                readers.append(client)
            if upstream_open and len(to_client) < _BUFFER_LIMIT:
                readers.append(upstream)
            writers = [
                sock
                for sock, buffer in ((client, to_client), (upstream, to_upstream))
                if buffer
            ]
            # Decrypted bytes already inside the TLS object make no socket readable.
            buffered = (
                client in readers
                and isinstance(client, ssl.SSLSocket)
                and client.pending() > 0
            )
            readable, writable, _ = select.select(
                readers, writers, [], 0 if buffered else POLL
            )
            if buffered and client not in readable:
                readable.append(client)

            if client in readable:
                data = _receive(client)
                if data == b"":
                    client_open = False
                elif data is not None:
                    to_upstream += data
            if upstream in readable:
                data = _receive(upstream)
                if data == b"":
                    upstream_open = False
                elif data is not None:
                    replacement = self.replace_replies
                    if replacement is not None:
                        data = replacement
                    budget = self.reply_budget
                    if budget is not None:
                        data = data[:budget]
                        self.reply_budget = budget - len(data)
                    to_client += data
            if client in writable:
                _send(client, to_client)
            if upstream in writable:
                _send(upstream, to_upstream)


def _receive(sock: socket.socket) -> bytes | None:
    """The next bytes; b"" at end of stream, None when nothing is there yet."""
    try:
        return sock.recv(_CHUNK)
    except _WOULD_BLOCK:
        return None


def _send(sock: socket.socket, buffer: bytearray) -> None:
    """Send what the socket takes from the front of ``buffer`` and remove it.

    A TLS write that would block must be retried with the same leading bytes; the
    buffer only ever grows at its end until the write succeeds, which keeps them.
    """
    try:
        sent = sock.send(bytes(buffer[:_CHUNK]))
    except _WOULD_BLOCK:
        return
    del buffer[:sent]
