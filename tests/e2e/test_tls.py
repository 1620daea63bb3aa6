"""HTTPS with every ``--ssl-*`` setting, against real TLS clients (httpx, ssl, curl).

The certificates come from trustme (``tests/tlsfiles.py``): a CA, a server
certificate for localhost/127.0.0.1/::1, an encrypted copy of its key, and a
client certificate signed by the same CA.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
from pathlib import Path

import httpx
import pytest
from procs import Monoceros
from tlsfiles import KEY_PASSWORD, TLSFiles, make_tls_files

from monoceros import Config
from monoceros.errors import ConfigError


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


async def scheme_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    body = scope["scheme"].encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


def client_context(tls: TLSFiles, *, cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=tls.ca_cert)
    if cert:
        ctx.load_cert_chain(tls.client_cert, tls.client_key)
    return ctx


def raw_https_get(srv, ctx: ssl.SSLContext) -> tuple[bytes, str | None, str]:
    """One request over a raw TLS socket: the reply, the ALPN protocol, the cipher."""
    with (
        socket.create_connection((srv.host, srv.port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        cipher = sock.cipher()
        return data, sock.selected_alpn_protocol(), cipher[0] if cipher else ""


def test_https_with_httpx(server, http_impl: str, tls: TLSFiles) -> None:
    with (
        server(scheme_app, ssl_certfile=tls.cert, ssl_keyfile=tls.key) as srv,
        httpx.Client(verify=client_context(tls)) as client,
    ):
        assert srv.url.startswith("https://")
        for _ in range(2):  # keep-alive over TLS
            r = client.get(srv.url)
            assert r.status_code == 200
            assert r.text == "https"  # the scope says so
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(srv.url.replace("https", "http"), timeout=5)  # plain HTTP is not spoken


def test_encrypted_key_with_password(server, http_impl: str, tls: TLSFiles) -> None:
    kwargs = {
        "ssl_certfile": tls.cert,
        "ssl_keyfile": tls.encrypted_key,
        "ssl_keyfile_password": KEY_PASSWORD,
    }
    with server(scheme_app, **kwargs) as srv:
        assert httpx.get(srv.url, verify=client_context(tls)).text == "https"


def test_certificate_and_key_in_one_file(server, tls: TLSFiles, tmp_path) -> None:
    combined = tmp_path / "both.pem"
    combined.write_text(Path(tls.cert).read_text() + Path(tls.key).read_text())
    with server(scheme_app, ssl_certfile=str(combined)) as srv:
        assert httpx.get(srv.url, verify=client_context(tls)).text == "https"


def test_client_certificates_required(server, http_impl: str, tls: TLSFiles) -> None:
    kwargs = {
        "ssl_certfile": tls.cert,
        "ssl_keyfile": tls.key,
        "ssl_cert_reqs": int(ssl.CERT_REQUIRED),
        "ssl_ca_certs": tls.ca_cert,
    }
    with server(scheme_app, **kwargs) as srv:
        # With TLS 1.3 the server's refusal arrives after the client's side of
        # the handshake: as an alert on the first read, a reset, or a close.
        try:
            data, _, _ = raw_https_get(srv, client_context(tls))
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            data = b""
        assert data == b"", data  # nothing served without a certificate
        with pytest.raises(httpx.HTTPError):
            httpx.get(srv.url, verify=client_context(tls))
        data, _, _ = raw_https_get(srv, client_context(tls, cert=True))
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"https")
        assert httpx.get(srv.url, verify=client_context(tls, cert=True)).text == "https"


def test_ciphers(server, tls: TLSFiles) -> None:
    # set_ciphers governs TLS 1.2 and older (TLS 1.3 suites are separate).
    kwargs = {
        "ssl_certfile": tls.cert,
        "ssl_keyfile": tls.key,
        "ssl_ciphers": "ECDHE-ECDSA-AES256-GCM-SHA384",
    }
    with server(scheme_app, **kwargs) as srv:
        ctx = client_context(tls)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        data, _, cipher = raw_https_get(srv, ctx)
        assert data.endswith(b"https")
        assert cipher == "ECDHE-ECDSA-AES256-GCM-SHA384"
        ctx = client_context(tls)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")  # nothing in common
        with pytest.raises(ssl.SSLError):
            raw_https_get(srv, ctx)


def test_alpn_offers_http11(server, http_impl: str, tls: TLSFiles) -> None:
    with server(scheme_app, ssl_certfile=tls.cert, ssl_keyfile=tls.key, http2=False) as srv:
        ctx = client_context(tls)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        data, alpn, _ = raw_https_get(srv, ctx)
        assert alpn == "http/1.1"
        assert data.startswith(b"HTTP/1.1 200")


def test_ssl_context_factory(server, tls: TLSFiles) -> None:
    calls = []

    def factory(config: Config, default):
        calls.append(config.ssl_certfile)
        ctx = default()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        return ctx

    with server(scheme_app, ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_context_factory=factory) as srv:
        assert httpx.get(srv.url, verify=client_context(tls)).text == "https"
        ctx = client_context(tls)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with pytest.raises(ssl.SSLError):
            raw_https_get(srv, ctx)  # the factory's context is the one in use
    assert calls == [tls.cert]


def test_bad_tls_settings_are_config_errors(tls: TLSFiles) -> None:
    def load(**kwargs) -> None:
        Config(scheme_app, log_config=None, lifespan="off", **kwargs).load()

    with pytest.raises(ConfigError, match="--ssl-ciphers 'NOT-A-CIPHER': no cipher matches"):
        load(ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_ciphers="NOT-A-CIPHER")
    with pytest.raises(ConfigError, match="--ssl-cert-reqs 7"):
        load(ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_cert_reqs=7)
    with pytest.raises(ConfigError, match=r"--ssl-ca-certs .*no PEM certificate"):
        load(ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_ca_certs=__file__)
    with pytest.raises(ConfigError, match=r"--ssl-ca-certs .*No such file"):
        load(ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_ca_certs="/no/ca.pem")
    with pytest.raises(ConfigError, match="--ssl-version 12345"):
        load(ssl_certfile=tls.cert, ssl_keyfile=tls.key, ssl_version=12345)


def test_command_line_with_every_ssl_option_and_curl(tls: TLSFiles) -> None:
    args = [
        "--ssl-certfile", tls.cert,
        "--ssl-keyfile", tls.encrypted_key,
        "--ssl-keyfile-password", KEY_PASSWORD,
        "--ssl-version", str(int(ssl.PROTOCOL_TLS_SERVER)),
        "--ssl-cert-reqs", "2",
        "--ssl-ca-certs", tls.ca_cert,
        "--ssl-ciphers", "ECDHE+AESGCM",
        "--port", "0",
        "procapps:app",
    ]  # fmt: skip
    with Monoceros(args) as proc:
        address = proc.url()
        assert address.startswith("https://127.0.0.1:")
        port = address.rsplit(":", 1)[1]
        url = f"https://localhost:{port}/scheme"
        curl = ["curl", "--silent", "--show-error", "--cacert", tls.ca_cert]
        ok = subprocess.run(
            [*curl, "--cert", tls.client_cert, "--key", tls.client_key, url],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout == "https"
        refused = subprocess.run([*curl, url], capture_output=True, text=True, timeout=20, check=False)
        assert refused.returncode != 0  # no client certificate
        untrusted = subprocess.run(
            ["curl", "--silent", "--cert", tls.client_cert, "--key", tls.client_key, url],
            capture_output=True,
            timeout=20,
            check=False,
        )
        assert untrusted.returncode == 60  # curl: the server's certificate is not trusted without --cacert
