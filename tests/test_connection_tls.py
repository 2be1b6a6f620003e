"""TLS (rediss://) with a CA and certificates made by trustme.

Every test runs against :class:`tests.tls_proxy.ForwardingProxy`, which terminates TLS
with Python's ``ssl`` module in front of the session's plain server, so TLS is tested
whatever the server binary supports. The tests parametrized with ``redis-server`` run
once more against the server's own TLS port; they are skipped when the binary was
built without TLS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import redis
import trustme

import tickpub
from tests._pubsub import Subscriber
from tests.conftest import ServerFactory
from tests.reference import reference_packb
from tests.tls_proxy import ForwardingProxy, server_context
from tickpub.server import ServerStartError

ProxyFactory = Callable[[ssl.SSLContext], ForwardingProxy]


@dataclass
class Pki:
    """A CA, the server certificate it issued for 127.0.0.1, and a client's files."""

    ca: Any
    server_cert: Any
    ca_file: Path
    cert_file: Path
    key_file: Path
    client_pem: Path
    client_cert_file: Path
    client_key_file: Path


@dataclass
class TlsEndpoint:
    """A TLS port and the plain URL of the same server, where subscribers listen."""

    url: str
    plain_url: str
    pki: Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    client_cert = ca.issue_cert("tickpub-client")
    pki = Pki(
        ca,
        server_cert,
        *(
            tmp_path / name
            for name in (
                "ca.pem",
                "srv.pem",
                "key.pem",
                "client.pem",
                "client-cert.pem",
                "client-key.pem",
            )
        ),
    )
    ca.cert_pem.write_to_path(str(pki.ca_file))
    server_cert.cert_chain_pems[0].write_to_path(str(pki.cert_file))
    server_cert.private_key_pem.write_to_path(str(pki.key_file))
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(pki.client_pem))
    client_cert.cert_chain_pems[0].write_to_path(str(pki.client_cert_file))
    client_cert.private_key_pem.write_to_path(str(pki.client_key_file))
    return pki


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tcp_address(url: str) -> tuple[str, int]:
    """Host and port of a ``redis://`` URL; skips the test for other servers."""
    parts = urlsplit(url)
    if parts.scheme != "redis" or parts.hostname is None:
        pytest.skip(f"the TLS proxy forwards to a redis:// TCP server, not {url}")
    return parts.hostname, parts.port or 6379


@pytest.fixture
def proxy_factory(redis_url: str) -> Iterator[ProxyFactory]:
    """Start TLS proxies in front of the session's server, stopped at teardown."""
    upstream = tcp_address(redis_url)
    with contextlib.ExitStack() as stack:

        def start(context: ssl.SSLContext) -> ForwardingProxy:
            return stack.enter_context(ForwardingProxy(upstream, context))

        yield start


@pytest.fixture(params=["proxy", "redis-server"])
def tls_endpoint(request: pytest.FixtureRequest, pki: Pki) -> TlsEndpoint:
    """The TLS proxy, or the server's own TLS port (skipped when it has none)."""
    if request.param == "proxy":
        redis_url: str = request.getfixturevalue("redis_url")
        factory: ProxyFactory = request.getfixturevalue("proxy_factory")
        proxy = factory(server_context(pki.server_cert))
        return TlsEndpoint(f"rediss://127.0.0.1:{proxy.port}/0", redis_url, pki)

    server_factory: ServerFactory = request.getfixturevalue("server_factory")
    port = free_port()
    tls_args = {
        "--tls-port": str(port),
        "--tls-cert-file": str(pki.cert_file),
        "--tls-key-file": str(pki.key_file),
        "--tls-ca-cert-file": str(pki.ca_file),
        "--tls-auth-clients": "optional",
    }
    try:
        server = server_factory(
            extra_args=[arg for pair in tls_args.items() for arg in pair]
        )
    except ServerStartError:
        pytest.skip(
            "the server binary was built without TLS support; set REDIS_SERVER_BIN "
            "to a redis-server with TLS (e.g. Debian's) to run this test"
        )
    return TlsEndpoint(f"rediss://127.0.0.1:{port}/0", server.url, pki)


@pytest.fixture
def channel() -> str:
    return f"tls-{uuid.uuid4().hex}"


def message() -> dict[str, object]:
    return {
        "symbol": "EURUSD",
        "bid": np.linspace(1.0, 2.0, 1000),
        "size": np.arange(250, dtype=np.int32).reshape(50, 5),
        "seq": 7,
    }


def test_tls_publish_with_verified_certificate(
    tls_endpoint: TlsEndpoint, channel: str
) -> None:
    data = message()
    big = bytes(range(256)) * 400
    with (
        Subscriber(tls_endpoint.plain_url, channel) as sub,
        tickpub.connect(
            tls_endpoint.url, ssl_ca_certs=tls_endpoint.pki.ca_file
        ) as conn,
    ):
        assert conn.ping()
        assert conn.publish(channel, data) == 1
        assert conn.publish_bytes(channel, big) == 1
        assert conn.publish_many(channel, [{"n": i} for i in range(3)]) == [1, 1, 1]
        assert conn.url == tls_endpoint.url
        expected = [reference_packb(data), big] + [
            reference_packb({"n": i}) for i in range(3)
        ]
        assert sub.receive(5) == expected


def test_tls_client_certificate_when_the_server_asks_for_none(
    tls_endpoint: TlsEndpoint,
) -> None:
    pki = tls_endpoint.pki
    url = f"{tls_endpoint.url}?ssl_ca_certs={pki.ca_file}"
    with tickpub.connect(url, ssl_certfile=str(pki.client_pem)) as conn:
        assert conn.ping()


def test_tls_unknown_ca_is_refused_unless_verification_is_off(
    tls_endpoint: TlsEndpoint, channel: str
) -> None:
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(tls_endpoint.url)
    assert info.value.kind == "tls"

    other_ca = tls_endpoint.pki.ca_file.with_name("other-ca.pem")
    trustme.CA().cert_pem.write_to_path(str(other_ca))
    with pytest.raises(tickpub.ConnectionError) as wrong:
        tickpub.connect(tls_endpoint.url, ssl_ca_certs=other_ca)
    assert wrong.value.kind == "tls"
    assert wrong.value.retry_safe is True

    with (
        Subscriber(tls_endpoint.plain_url, channel) as sub,
        tickpub.connect(tls_endpoint.url, ssl_cert_reqs="none") as conn,
    ):
        assert conn.publish_bytes(channel, b"unverified") == 1
        assert sub.receive(1) == [b"unverified"]


def test_tls_ca_file_that_does_not_exist_is_a_config_error(
    tls_endpoint: TlsEndpoint,
) -> None:
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(tls_endpoint.url, ssl_ca_certs="/nonexistent/ca.pem")
    assert info.value.kind == "config"


def test_tls_proxy_failed_handshakes_are_seen_by_the_proxy(
    proxy_factory: ProxyFactory, pki: Pki
) -> None:
    proxy = proxy_factory(server_context(pki.server_cert))
    with pytest.raises(tickpub.ConnectionError):
        tickpub.connect(f"rediss://127.0.0.1:{proxy.port}/0")
    assert proxy.accepted == 1
    [error] = proxy.wait_for_handshake_errors(1)
    assert "unknown ca" in error.lower()


def test_tls_client_certificate_required_by_the_server(
    proxy_factory: ProxyFactory, pki: Pki, redis_url: str, channel: str
) -> None:
    proxy = proxy_factory(server_context(pki.server_cert, client_ca=pki.ca))
    url = f"rediss://127.0.0.1:{proxy.port}/0"
    with (
        Subscriber(redis_url, channel) as sub,
        tickpub.connect(
            url,
            ssl_ca_certs=pki.ca_file,
            ssl_certfile=pki.client_cert_file,
            ssl_keyfile=pki.client_key_file,
        ) as conn,
    ):
        assert conn.publish(channel, message()) == 1
        assert sub.receive(1) == [reference_packb(message())]
    with tickpub.connect(url, ssl_ca_certs=pki.ca_file, ssl_certfile=pki.client_pem):
        pass
    assert proxy.handshake_errors == []

    with pytest.raises(tickpub.ConnectionError) as missing:
        tickpub.connect(url, ssl_ca_certs=pki.ca_file)
    assert missing.value.kind == "tls"
    # Wait for the first failure, so that the two errors are recorded in order.
    proxy.wait_for_handshake_errors(1)

    stranger = trustme.CA().issue_cert("stranger")
    stranger_pem = pki.client_pem.with_name("stranger.pem")
    stranger.private_key_and_cert_chain_pem.write_to_path(str(stranger_pem))
    with pytest.raises(tickpub.ConnectionError) as untrusted:
        tickpub.connect(url, ssl_ca_certs=pki.ca_file, ssl_certfile=stranger_pem)
    assert untrusted.value.kind == "tls"
    errors = proxy.wait_for_handshake_errors(2)
    assert len(errors) == 2
    assert "did not return a certificate" in errors[0]
    assert "certificate verify failed" in errors[1]


def test_tls_hostname_mismatch_is_refused(
    proxy_factory: ProxyFactory, pki: Pki
) -> None:
    # Signed by the trusted CA, but for another name than the one connected to.
    elsewhere = pki.ca.issue_cert("tickpub-elsewhere.example")
    proxy = proxy_factory(server_context(elsewhere))
    url = f"rediss://127.0.0.1:{proxy.port}/0"
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(url, ssl_ca_certs=pki.ca_file)
    assert info.value.kind == "tls"
    with tickpub.connect(url, ssl_ca_certs=pki.ca_file, ssl_cert_reqs="none") as conn:
        assert conn.ping()


class Quote(tickpub.Publisher):
    pass


@pytest.mark.parametrize("case", ["verified", "unverified", "client-certificate"])
def test_publisher_with_a_redis_py_ssl_client(
    proxy_factory: ProxyFactory, pki: Pki, redis_url: str, channel: str, case: str
) -> None:
    ssl_kwargs: dict[str, Any] = {"ssl_ca_certs": str(pki.ca_file)}
    context = server_context(pki.server_cert)
    if case == "unverified":
        context = server_context(trustme.CA().issue_cert("127.0.0.1"))
        ssl_kwargs = {"ssl_cert_reqs": "none"}
    elif case == "client-certificate":
        context = server_context(pki.server_cert, client_ca=pki.ca)
        ssl_kwargs["ssl_certfile"] = str(pki.client_cert_file)
        ssl_kwargs["ssl_keyfile"] = str(pki.client_key_file)
    proxy = proxy_factory(context)
    client = redis.Redis(host="127.0.0.1", port=proxy.port, ssl=True, **ssl_kwargs)
    try:
        # The redis-py client itself works through the proxy.
        assert client.ping()
        data = message()
        with Subscriber(redis_url, channel) as sub:
            quote = Quote(channel_name=channel, connection=client)
            assert quote.publish(data) == 1
            assert sub.receive(1) == [reference_packb(data)]
        native = quote.publisher_connection()
        assert native.url.startswith(f"rediss://127.0.0.1:{proxy.port}")
        native.close()
    finally:
        client.close()
    assert proxy.handshake_errors == []
