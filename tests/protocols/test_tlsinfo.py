"""The pieces of the ASGI tls extension that need no handshake
(monoceros/protocols/utils.py); the e2e tests cover the rest."""

from __future__ import annotations

from pathlib import Path

from monoceros.protocols.utils import read_server_cert, rfc4514


def test_rfc4514_order_names_and_escapes() -> None:
    subject = (
        (("countryName", "DE"),),
        (("organizationName", 'Acme, "Inc"'),),
        (("commonName", " lead#+;<>\\"), ("userId", "u1")),
        (("1.2.3.4", "trailing "),),
    )
    assert rfc4514(subject) == (
        "1.2.3.4=trailing\\ ,"
        "CN=\\ lead#\\+\\;\\<\\>\\\\+UID=u1,"
        'O=Acme\\, \\"Inc\\",'
        "C=DE"
    )
    assert rfc4514(((("commonName", "#hash"),),)) == "CN=\\#hash"
    assert rfc4514(()) == ""


def test_read_server_cert(tmp_path: Path) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    both = tmp_path / "both.pem"
    both.write_text("-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----\n" + pem + pem)
    assert read_server_cert(str(both)) == pem  # the first certificate only
    key_only = tmp_path / "key.pem"
    key_only.write_text("-----BEGIN PRIVATE KEY-----\nKKKK\n-----END PRIVATE KEY-----\n")
    assert read_server_cert(str(key_only)) is None
    assert read_server_cert(str(tmp_path / "missing.pem")) is None
    assert read_server_cert(None) is None
