"""What a caller sees when the server fails, refuses, restarts or limits messages."""

from __future__ import annotations

import logging
import socket
import uuid

import numpy as np
import pytest
import redis

import tickpub
from tests._pubsub import Subscriber
from tests.conftest import ServerFactory

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
