"""TLS (rediss://) against a server with a CA and certificate made by trustme."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

import tickpub
from tests.conftest import ServerFactory
from tickpub.server import ServerStartError


@dataclass
class TlsServer:
    url: str
    ca_file: Path
    client_cert: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def tls_server(server_factory: ServerFactory, tmp_path: Path) -> TlsServer:
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    client_cert = ca.issue_cert("tickpub-client")
    ca_file, cert_file, key_file = (
        tmp_path / n for n in ("ca.pem", "srv.pem", "key.pem")
    )
    ca.cert_pem.write_to_path(str(ca_file))
    server_cert.cert_chain_pems[0].write_to_path(str(cert_file))
    server_cert.private_key_pem.write_to_path(str(key_file))
    client_file = tmp_path / "client.pem"
    client_cert.private_key_and_cert_chain_pem.write_to_path(str(client_file))

    port = free_port()
    tls_args = {
        "--tls-port": str(port),
        "--tls-cert-file": str(cert_file),
        "--tls-key-file": str(key_file),
        "--tls-ca-cert-file": str(ca_file),
        "--tls-auth-clients": "optional",
    }
    try:
        server_factory(extra_args=[arg for pair in tls_args.items() for arg in pair])
    except ServerStartError as err:
        pytest.skip(
            "the server binary was built without TLS support; set REDIS_SERVER_BIN "
            f"to a redis-server with TLS (e.g. Debian's) to run this test ({err})"
        )
    return TlsServer(f"rediss://127.0.0.1:{port}/0", ca_file, client_file)


def test_tls_publish_with_verified_certificate(tls_server: TlsServer) -> None:
    with tickpub.connect(tls_server.url, ssl_ca_certs=tls_server.ca_file) as conn:
        assert conn.ping()
        assert conn.publish_bytes("tls", b"x" * 100_000) == 0
        assert conn.url == tls_server.url


def test_tls_client_certificate(tls_server: TlsServer) -> None:
    url = f"{tls_server.url}?ssl_ca_certs={tls_server.ca_file}"
    with tickpub.connect(url, ssl_certfile=str(tls_server.client_cert)) as conn:
        assert conn.ping()


def test_tls_unknown_ca_is_refused_unless_verification_is_off(
    tls_server: TlsServer,
) -> None:
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(tls_server.url)
    assert info.value.kind == "tls"
    with tickpub.connect(tls_server.url, ssl_cert_reqs="none") as conn:
        assert conn.ping()


def test_tls_ca_file_that_does_not_exist_is_a_config_error(
    tls_server: TlsServer,
) -> None:
    with pytest.raises(tickpub.ConnectionError) as info:
        tickpub.connect(tls_server.url, ssl_ca_certs="/nonexistent/ca.pem")
    assert info.value.kind == "config"
