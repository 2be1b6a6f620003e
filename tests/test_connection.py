"""Connection basics against a real server: what a publisher and its subscribers see."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator

import msgpack
import msgpack_numpy
import numpy as np
import pytest
import redis

import tickpub
from tests._pubsub import Subscriber
from tests.conftest import ServerFactory


def reference(data: object) -> bytes:
    """popoto's encoding: msgpack with msgpack_numpy's hook."""
    packed: bytes = msgpack.packb(data, default=msgpack_numpy.encode)
    return packed


@pytest.fixture
def conn(redis_url: str) -> Iterator[tickpub.Connection]:
    with tickpub.connect(redis_url) as connection:
        yield connection


@pytest.fixture
def channel() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_publish_bytes_returns_subscriber_count_and_delivers_exact_bytes(
    conn: tickpub.Connection, redis_url: str, channel: str
) -> None:
    payloads = [b"", b"small", bytes(range(256)) * 40, b"\r\n$3\r\n" * 5]
    assert conn.publish_bytes(channel, b"nobody listens") == 0
    with Subscriber(redis_url, channel) as one, Subscriber(redis_url, channel) as two:
        counts = [conn.publish_bytes(channel, payload) for payload in payloads]
        assert counts == [2] * len(payloads)
        assert one.receive(len(payloads)) == payloads
        assert two.receive(len(payloads)) == payloads


def test_bytes_channel_and_non_ascii_str_channel(
    conn: tickpub.Connection, redis_url: str
) -> None:
    name = f"tick-€-{uuid.uuid4().hex}"
    with Subscriber(redis_url, name) as sub:
        assert conn.publish_bytes(name, b"a") == 1
        assert conn.publish_bytes(name.encode(), b"b") == 1
        assert sub.receive(2) == [b"a", b"b"]


@pytest.mark.parametrize("bad", [1, None, ["ch"], bytearray(b"ch")])
def test_channel_must_be_str_or_bytes(conn: tickpub.Connection, bad: object) -> None:
    with pytest.raises(TypeError, match="channel must be str or bytes"):
        conn.publish_bytes(bad, b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="channel must be str or bytes"):
        conn.publish(bad, {"a": 1})  # type: ignore[arg-type]
    assert conn.ping()


def test_payload_must_be_bytes(conn: tickpub.Connection, channel: str) -> None:
    with pytest.raises(TypeError, match="payload must be bytes"):
        conn.publish_bytes(channel, "text")  # type: ignore[arg-type]


def test_stats_count_confirmed_messages_and_bytes(
    conn: tickpub.Connection, channel: str
) -> None:
    conn.publish_bytes(channel, b"12345")
    conn.publish_bytes(channel, b"x" * 5000)
    stats = conn.stats()
    assert stats == {"messages": 2, "bytes": 5005, "errors": 0, "reconnects": 0}


def test_publish_many_large_messages_cross_chunk_boundaries(
    conn: tickpub.Connection, redis_url: str, channel: str
) -> None:
    # 1.2 MB each: three chunks of at most 4 MiB, and within the server's output
    # buffer limit for a subscriber that reads only afterwards.
    messages = [{"i": i, "a": np.full(150_000, i, dtype=np.float64)} for i in range(8)]
    with Subscriber(redis_url, channel) as sub:
        assert conn.publish_many(channel, iter(messages)) == [1] * 8
        received = sub.receive(8)
    assert received == [reference(m) for m in messages]


def test_publish_many_pipelines_and_returns_each_count(
    conn: tickpub.Connection, redis_url: str, channel: str
) -> None:
    messages = [{"seq": i, "price": 100.0 + i} for i in range(2500)]
    with Subscriber(redis_url, channel) as sub:
        counts = conn.publish_many(channel, messages)
        assert counts == [1] * len(messages)
        received = sub.receive(len(messages))
    assert received == [reference(m) for m in messages]
    assert conn.publish_many(channel, []) == []


def test_spublish_reaches_a_shard_subscriber(
    conn: tickpub.Connection, redis_url: str, channel: str, redis_client: redis.Redis
) -> None:
    major = int(str(redis_client.info("server")["redis_version"]).split(".")[0])
    if major < 7:
        with pytest.raises(tickpub.ServerError):
            conn.spublish(channel, {"a": 1})
        return
    with Subscriber(redis_url, channel, sharded=True) as sub:
        data = {"symbol": "AAPL", "bid": np.arange(4, dtype=np.float32)}
        assert conn.spublish(channel, data) == 1
        assert sub.receive(1) == [reference(data)]


def test_ping_url_and_repr(redis_url: str) -> None:
    conn = tickpub.connect(redis_url)
    assert conn.ping() is True
    assert conn.url == redis_url
    assert repr(conn) == f"<tickpub.Connection {redis_url}>"
    conn.close()


def test_closed_connection_raises_and_close_is_idempotent(
    redis_url: str, channel: str
) -> None:
    with tickpub.connect(redis_url) as conn:
        assert conn.publish_bytes(channel, b"x") == 0
    conn.close()
    with pytest.raises(tickpub.ConnectionError, match="closed") as info:
        conn.publish_bytes(channel, b"x")
    assert info.value.retry_safe is True


def test_redis_url_environment_variable_is_the_default(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    with tickpub.connect() as conn:
        assert conn.url == redis_url
        assert conn.ping()


def test_select_db_and_client_name(redis_url: str, redis_client: redis.Redis) -> None:
    name = f"db3-{uuid.uuid4().hex[:8]}"
    with tickpub.connect(redis_url, db=3, client_name=name) as conn:
        clients = [c for c in redis_client.client_list() if c["name"] == name]
        assert len(clients) == 1
        assert clients[0]["db"] == "3"
        assert conn.url.endswith("/3")
    # ?db= wins over the path, as in redis-py.
    base = redis_url.rsplit("/", 1)[0]
    with tickpub.connect(f"{base}/1?db=5&client_name={name}-q"):
        clients = [c for c in redis_client.client_list() if c["name"] == f"{name}-q"]
        assert [c["db"] for c in clients] == ["5"]


def test_client_name_with_space_is_a_config_error(redis_url: str) -> None:
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(redis_url, client_name="has space")
    assert info.value.kind == "config"


def test_unknown_options_raise_type_error_naming_them(redis_url: str) -> None:
    with pytest.raises(TypeError, match="colour, sizes"):
        tickpub.connect(redis_url, colour="red", sizes=3, db=1)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "options"),
    [
        ("http://127.0.0.1:6379", {}),
        ("redis://127.0.0.1:notaport", {}),
        ("redis://127.0.0.1:6379/abc", {}),
        ("redis://127.0.0.1:6379?colour=red", {}),
        ("redis://127.0.0.1:6379", {"ssl_cert_reqs": "none"}),
        ("redis://127.0.0.1:6379", {"socket_timeout": -1}),
        ("redis://127.0.0.1:6379", {"db": -2}),
        ("redis://127.0.0.1:6379", {"retry_attempts": 0}),
        ("redis://127.0.0.1:6379", {"busy_poll": -0.001}),
        ("redis://127.0.0.1:6379", {"busy_poll": 0.5}),
        ("redis://127.0.0.1:6379?busy_poll=soon", {}),
    ],
)
def test_invalid_settings_are_config_errors(
    url: str, options: dict[str, object]
) -> None:
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(url, **options)  # type: ignore[arg-type]
    assert info.value.kind == "config"
    assert info.value.retry_safe is True


@pytest.mark.parametrize("busy_poll", [0, 0.0005, "0.0002"])
def test_busy_poll_settings_publish_alike(
    redis_url: str, channel: str, busy_poll: float | str
) -> None:
    # Polling for the reply or sleeping for it changes when the reply is read, not
    # what is read: each reply still pairs with its own message.
    options: dict[str, object] = {"busy_poll": busy_poll}
    conn = tickpub.connect(redis_url, **options)  # type: ignore[arg-type]
    with conn, Subscriber(redis_url, channel) as sub:
        assert conn.publish(channel, {"n": -1}) == 1
        assert conn.publish_many(channel, [{"n": i} for i in range(50)]) == [1] * 50
        received = sub.receive(51)
    assert received == [reference({"n": n}) for n in range(-1, 50)]


def test_option_of_wrong_type_is_a_type_error(redis_url: str) -> None:
    with pytest.raises(TypeError, match="db"):
        tickpub.connect(redis_url, db=[3])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="db"):
        tickpub.connect(redis_url, db=True)


def test_unix_socket(server_factory: ServerFactory) -> None:
    server = server_factory(unix_socket=True)
    url = server.unix_url.replace("?db=0", "?db=2")
    with tickpub.connect(url) as conn, Subscriber(server.unix_url, "u") as sub:
        assert conn.publish_bytes("u", b"over a unix socket") == 1
        assert sub.receive(1) == [b"over a unix socket"]
        assert conn.url.startswith("unix://")
        assert conn.url.endswith("?db=2")


def test_publish_sends_the_reference_encoding(
    conn: tickpub.Connection, redis_url: str, channel: str
) -> None:
    messages = [
        {"symbol": "AAPL", "price": 150.25, "size": 100, "ts": 1733250000.123456},
        {"frame": np.arange(100_000, dtype=np.float64).reshape(250, 400)},
        {"bids": np.array([1.5, 2.5], dtype=np.float32), "nested": {"ids": [1, 2]}},
    ]
    with Subscriber(redis_url, channel) as sub:
        for data in messages:
            assert conn.publish(channel, data) == 1
        received = sub.receive(len(messages))
    assert received == [reference(data) for data in messages]
    decoded = msgpack.unpackb(received[1], object_hook=msgpack_numpy.decode)
    np.testing.assert_array_equal(
        decoded["frame"], np.arange(100_000).reshape(250, 400)
    )


def test_encode_error_sends_nothing_and_leaves_connection_usable(
    conn: tickpub.Connection, redis_url: str, channel: str
) -> None:
    bad = {"ok": np.zeros(10_000), "bad": object()}
    with Subscriber(redis_url, channel) as sub:
        with pytest.raises(tickpub.EncodeError):
            conn.publish(channel, bad)
        with pytest.raises(tickpub.EncodeError):
            conn.publish_many(channel, [{"a": 1}, {"b": 2}, bad])
        assert conn.publish(channel, {"after": 1}) == 1
        assert sub.receive(1) == [reference({"after": 1})]
        assert sub.nothing_more()


def test_published_arrays_are_released_after_each_call(
    conn: tickpub.Connection, channel: str
) -> None:
    # Messages are kept for reuse between calls: what they borrowed must not be.
    frame = np.arange(10_000, dtype=np.float64)
    baseline = sys.getrefcount(frame)
    conn.publish(channel, {"frame": frame})
    conn.publish_many(channel, [{"frame": frame}] * 20)
    with pytest.raises(tickpub.EncodeError):
        conn.publish_many(channel, [{"frame": frame}, {"bad": object()}])
    assert sys.getrefcount(frame) == baseline


def test_reused_messages_carry_nothing_over(
    conn: tickpub.Connection, redis_url: str, channel: str
) -> None:
    big = {"frame": np.arange(5_000, dtype=np.int64), "name": "x" * 3000}
    with Subscriber(redis_url, channel) as sub:
        conn.publish_many(channel, [big, big, {"n": 1}])
        conn.publish_many(channel, [{"n": 2}, {"n": 3}, big])
        received = sub.receive(6)
    expected = [big, big, {"n": 1}, {"n": 2}, {"n": 3}, big]
    assert received == [reference(data) for data in expected]
