"""What a caller sees when the server fails, refuses, restarts or limits messages."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import redis

import tickpub
from tests._faults import paused, resumed_by_watchdog
from tests._pubsub import Subscriber
from tests.conftest import ServerFactory
from tests.tls_proxy import ForwardingProxy

SECRET = "s3cret-Pa55word"


def start_with_password(server_factory: ServerFactory) -> str:
    """A private server requiring SECRET; returns its URL without credentials.

    The password is set after start, since the start-up check pings without one.
    """
    server = server_factory()
    admin = redis.Redis.from_url(server.url)
    admin.config_set("requirepass", SECRET)
    admin.close()
    return server.url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_nothing_listening_is_refused() -> None:
    port = free_port()
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(f"redis://127.0.0.1:{port}/0")
    assert info.value.kind == "refused"
    assert info.value.retry_safe is True
    assert isinstance(info.value, ConnectionError)


def test_server_restart_mid_stream_costs_one_error_and_no_duplicate(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tickpub")
    server = server_factory()
    conn = tickpub.connect(server.url)
    with Subscriber(server.url, "stream") as sub:
        for i in range(50):
            assert conn.publish_bytes("stream", b"%d" % i) == 1
        assert sub.receive(50) == [b"%d" % i for i in range(50)]

    server.stop()
    server = server_factory(port=server.port)
    errors: list[tickpub.ConnectionError] = []
    with Subscriber(server.url, "stream") as sub:
        for i in range(50, 100):
            try:
                conn.publish_bytes("stream", b"%d" % i)
            except tickpub.ConnectionError as err:
                errors.append(err)
        received = sub.receive(100, timeout=2)

    assert len(errors) == 1
    assert errors[0].kind == "dropped"
    lost = int(received[0]) - 1
    assert received == [b"%d" % i for i in range(lost + 1, 100)]
    assert lost == 50
    stats = conn.stats()
    assert stats["reconnects"] == 1
    assert stats["errors"] == 1
    assert stats["messages"] == 99
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("lost" in m for m in warnings)
    assert any("reconnected" in m for m in warnings)


def test_reconnect_gives_up_after_retry_attempts(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tickpub")
    server = server_factory()
    conn = tickpub.connect(server.url, retry_attempts=2, retry_backoff=0.01)
    server.stop()
    with pytest.raises(tickpub.ConnectionError) as first:
        conn.publish_bytes("c", b"x")
    assert first.value.kind == "dropped"
    with pytest.raises(tickpub.ConnectionError) as second:
        conn.publish_bytes("c", b"x")
    assert second.value.kind == "refused"
    assert second.value.retry_safe is True
    levels = [r.levelno for r in caplog.records if r.name == "tickpub"]
    assert levels.count(logging.ERROR) == 1
    assert any("giving up" in r.getMessage() for r in caplog.records)


def test_client_kill_fails_the_call_in_flight_then_reconnects(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    name = f"victim-{uuid.uuid4().hex[:8]}"
    conn = tickpub.connect(server.url, client_name=name)
    admin = redis.Redis.from_url(server.url)
    with Subscriber(server.url, "k") as sub:
        assert conn.publish_bytes("k", b"before") == 1
        admin.client_kill_filter(
            _id=next(c["id"] for c in admin.client_list() if c["name"] == name)
        )
        with pytest.raises(tickpub.ConnectionError) as info:
            conn.publish_bytes("k", b"lost")
        assert info.value.kind == "dropped"
        assert info.value.retry_safe is False
        assert conn.publish_bytes("k", b"after") == 1
        assert sub.receive(3, timeout=2) == [b"before", b"after"]
    assert [c["name"] for c in admin.client_list()].count(name) == 1
    admin.close()


def test_wrong_password_is_an_auth_error_without_the_password(
    server_factory: ServerFactory,
) -> None:
    url = start_with_password(server_factory)
    base = url.replace("redis://", "redis://:{}@")
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(base.format("wrong-" + SECRET))
    assert info.value.kind == "auth"
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)

    with pytest.raises(tickpub.ConnectionError) as missing:
        tickpub.connect(url)
    assert missing.value.kind == "auth"

    with tickpub.connect(url, password=SECRET) as conn:
        assert conn.ping()
        assert SECRET not in repr(conn)
        assert SECRET not in conn.url
        assert ":***@" in conn.url


def test_acl_user_without_config_permission(server_factory: ServerFactory) -> None:
    server = server_factory()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "alice",
        enabled=True,
        passwords=["+alice%pw"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", "-config"],
    )
    admin.close()
    host = server.url.removeprefix("redis://")
    with tickpub.connect(f"redis://alice:alice%25pw@{host}") as conn:
        # CONFIG GET is refused by the ACL; the default 512 MiB limit applies.
        assert conn.publish_bytes("acl", b"hello") == 0
        assert conn.url.startswith("redis://alice:***@")
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(f"redis://alice:nope@{host}")
    assert info.value.kind == "auth"
    with pytest.raises(tickpub.ConnectionError) as other_user:
        tickpub.connect(server.url, username="bob", password="alice%pw")
    assert other_user.value.kind == "auth"


def test_acl_refusing_publish_is_a_server_error(server_factory: ServerFactory) -> None:
    server = server_factory()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "reader",
        enabled=True,
        passwords=["+pw"],
        channels=["allowed"],
        commands=["+@all"],
    )
    admin.close()
    with tickpub.connect(server.url, username="reader", password="pw") as conn:
        with pytest.raises(tickpub.ServerError) as info:
            conn.publish_bytes("forbidden", b"x")
        assert info.value.code == "NOPERM"
        assert conn.publish_bytes("allowed", b"x") == 0
        assert conn.stats()["errors"] == 1


def test_message_larger_than_proto_max_bulk_len_is_refused_before_sending(
    server_factory: ServerFactory,
) -> None:
    server = server_factory(extra_args=["--proto-max-bulk-len", "1mb"])
    conn = tickpub.connect(server.url)
    with Subscriber(server.url, "big") as sub:
        with pytest.raises(tickpub.MessageTooLargeError, match="proto-max-bulk-len"):
            conn.publish_bytes("big", b"\0" * (2 * 1024 * 1024))
        frame = np.zeros(2 * 1024 * 1024 // 8, dtype=np.float64)
        with pytest.raises(tickpub.MessageTooLargeError):
            conn.publish("big", {"frame": frame})
        with pytest.raises(tickpub.MessageTooLargeError):
            conn.publish_many("big", [{"small": 1}, {"frame": frame}])
        assert conn.publish_bytes("big", b"fits") == 1
        assert sub.receive(2, timeout=1) == [b"fits"]
    assert conn.stats()["reconnects"] == 0


def test_password_never_logged(
    server_factory: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="tickpub")
    url = start_with_password(server_factory)
    url = url.replace("redis://", f"redis://default:{SECRET}@")
    conn = tickpub.connect(url, client_name="logged")
    admin = redis.Redis.from_url(url)
    admin.client_kill_filter(_type="normal", skipme=True)
    admin.close()
    with pytest.raises(tickpub.ConnectionError) as info:
        conn.publish_bytes("c", b"x")
    assert conn.publish_bytes("c", b"x") == 0
    assert len(caplog.records) >= 3
    assert SECRET not in caplog.text
    assert all(SECRET not in str(r.args) for r in caplog.records)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(conn)


def test_read_timeout_while_the_server_is_paused(server_factory: ServerFactory) -> None:
    server = server_factory()
    conn = tickpub.connect(server.url, socket_timeout=0.3)
    with Subscriber(server.url, "slow") as sub:
        with paused(server), pytest.raises(tickpub.ConnectionError) as info:
            conn.publish_bytes("slow", b"sent")
        assert info.value.kind == "timeout"
        # The command was written before the wait for its reply timed out.
        assert info.value.retry_safe is False
        # ...and the resumed server did publish it: resending would duplicate it.
        assert sub.receive(1) == [b"sent"]

        # The late reply is not taken for the reply of a later command.
        assert conn.ping() is True
        assert conn.publish_bytes("slow", b"after") == 1
        assert sub.receive(2, timeout=1) == [b"after"]
    stats = conn.stats()
    assert stats["errors"] == 1
    assert stats["reconnects"] == 1
    assert stats["messages"] == 1


def test_write_timeout_while_the_server_is_paused(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    conn = tickpub.connect(server.url, socket_timeout=0.3)
    # Far more than the loopback socket buffers hold, so the write itself blocks.
    payload = b"\0" * (64 * 1024 * 1024)
    with Subscriber(server.url, "stuck") as sub:
        with paused(server), pytest.raises(tickpub.ConnectionError) as info:
            conn.publish_bytes("stuck", payload)
        assert info.value.kind == "timeout"
        # Part of the command was written.
        assert info.value.retry_safe is False
        assert conn.publish_bytes("stuck", b"small") == 1
        assert sub.receive(2, timeout=2) == [b"small"]
    assert conn.stats()["reconnects"] == 1
    conn.close()


def test_connect_timeout_bounds_the_handshake(server_factory: ServerFactory) -> None:
    server = server_factory()
    # The kernel still accepts the TCP connection; the handshake gets no reply.
    with paused(server), pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(server.url, socket_connect_timeout=0.3)
    assert info.value.kind == "timeout"
    assert info.value.retry_safe is True
    with tickpub.connect(server.url, socket_connect_timeout=0.3) as conn:
        assert conn.ping()


@pytest.fixture
def plain_proxy(redis_url: str) -> Iterator[ForwardingProxy]:
    """A plain TCP proxy in front of the session's server."""
    parts = urlsplit(redis_url)
    if parts.scheme != "redis" or parts.hostname is None:
        pytest.skip(f"the proxy forwards to a redis:// TCP server, not {redis_url}")
    with ForwardingProxy((parts.hostname, parts.port or 6379)) as proxy:
        yield proxy


NOT_RESP = b"HTTP/1.1 400 Bad Request\r\n\r\n"


def test_reply_that_is_not_resp_during_connect_is_a_protocol_error(
    plain_proxy: ForwardingProxy,
) -> None:
    plain_proxy.replace_replies = NOT_RESP
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(f"redis://127.0.0.1:{plain_proxy.port}/0")
    assert info.value.kind == "protocol"


def test_reply_that_is_not_resp_to_publish_is_a_protocol_error(
    plain_proxy: ForwardingProxy, redis_url: str
) -> None:
    channel = f"garbled-{uuid.uuid4().hex}"
    conn = tickpub.connect(f"redis://127.0.0.1:{plain_proxy.port}/0")
    with Subscriber(redis_url, channel) as sub:
        assert conn.publish_bytes(channel, b"clean") == 1
        plain_proxy.replace_replies = NOT_RESP
        with pytest.raises(tickpub.ConnectionError) as info:
            conn.publish_bytes(channel, b"garbled")
        assert info.value.kind == "protocol"
        assert info.value.retry_safe is False

        plain_proxy.replace_replies = None
        assert conn.publish_bytes(channel, b"again") == 1
        assert sub.receive(3) == [b"clean", b"garbled", b"again"]
    assert conn.stats()["reconnects"] == 1
    conn.close()


def test_gil_is_released_while_publish_waits_for_the_reply(
    server_factory: ServerFactory,
) -> None:
    server = server_factory()
    conn = tickpub.connect(server.url)
    waiting = threading.Event()
    results: list[object] = []

    def publish() -> None:
        waiting.set()
        try:
            results.append(conn.publish_bytes("gil", b"x"))
        except BaseException as err:
            results.append(err)

    thread = threading.Thread(target=publish, name="blocked-publish")
    with resumed_by_watchdog(server, after=10):
        try:
            with paused(server):
                thread.start()
                assert waiting.wait(timeout=30)
                # This thread runs Python while the other one waits in publish only
                # if that call released the GIL; held, nothing here would run until
                # the watchdog resumed the server and the call returned.
                time.sleep(0.2)
                still_waiting = thread.is_alive()
        finally:
            os.kill(server.pid, signal.SIGCONT)
            if thread.ident is not None:
                thread.join(timeout=30)
    assert still_waiting
    assert not thread.is_alive()
    assert results == [0]


@pytest.mark.parametrize("batch", [1, 5, 2500])
def test_publish_many_refused_by_acl_leaves_the_connection_usable(
    server_factory: ServerFactory, batch: int
) -> None:
    server = server_factory()
    admin = redis.Redis.from_url(server.url)
    admin.acl_setuser(
        "ticker",
        enabled=True,
        passwords=["+pw"],
        channels=["ok*"],
        commands=["+@all"],
    )
    admin.close()
    conn = tickpub.connect(server.url, username="ticker", password="pw")
    with (
        Subscriber(server.url, "denied") as denied,
        Subscriber(server.url, "ok-1") as ok,
    ):
        with pytest.raises(tickpub.ServerError) as info:
            conn.publish_many("denied", [{"i": i} for i in range(batch)])
        assert info.value.code == "NOPERM"

        # Every reply of the refused batch was read: the next ones are the right ones.
        assert conn.publish("ok-1", {"after": True}) == 1
        assert conn.publish_many("ok-1", [{"n": 1}, {"n": 2}]) == [1, 1]
        assert conn.ping() is True
        assert len(ok.receive(3)) == 3
        assert denied.nothing_more()
    stats = conn.stats()
    assert stats["errors"] == 1
    assert stats["messages"] == 3
    assert stats["reconnects"] == 0
    conn.close()


def test_a_batch_cut_off_mid_way_keeps_what_the_server_confirmed(
    plain_proxy: ForwardingProxy, redis_url: str
) -> None:
    # publish_many writes 1000 frames, reads their replies, then writes the next
    # 1000. The connection drops once the first chunk's replies are through: those
    # messages are published and counted; of the second chunk some, all or none
    # reached the server; the third is never written.
    channel = f"cut-{uuid.uuid4().hex}"
    conn = tickpub.connect(f"redis://127.0.0.1:{plain_proxy.port}/0")
    with Subscriber(redis_url, channel) as sub:
        plain_proxy.reply_budget = 1000 * len(b":1\r\n")
        with pytest.raises(tickpub.ConnectionError) as info:
            conn.publish_many(channel, [{"n": n} for n in range(2500)])
        assert info.value.retry_safe is False
        assert conn.stats()["messages"] == 1000

        plain_proxy.reply_budget = None
        assert conn.publish(channel, {"n": "after"}) == 1
        received: list[dict[str, Any]] = []
        while not received or received[-1] != {"n": "after"}:
            [payload] = sub.receive(1)
            received.append(tickpub.unpackb(payload))
    numbers = [message["n"] for message in received[:-1]]
    assert numbers == list(range(len(numbers)))
    assert 1000 <= len(numbers) <= 2000
    assert conn.stats()["reconnects"] == 1
    conn.close()
