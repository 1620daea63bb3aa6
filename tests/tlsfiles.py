"""Certificates for the TLS tests, made with trustme in a temporary folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization

KEY_PASSWORD = "correct horse"


@dataclasses.dataclass
class TLSFiles:
    ca: trustme.CA
    ca_cert: str  # the CA that signed the server's and the client's certificates
    cert: str  # server certificate for localhost, 127.0.0.1 and ::1
    key: str
    encrypted_key: str  # the same key, encrypted with KEY_PASSWORD
    other_key: str  # a key that does not match ``cert``
    client_cert: str  # client certificate and key in one file
    client_key: str


def make_tls_files(folder: Path) -> TLSFiles:
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1", "::1")
    client = ca.issue_cert("client@example.com")
    other = trustme.CA().issue_cert("localhost")
    paths = {name: folder / f"{name}.pem" for name in ("ca", "cert", "key", "enc", "other", "client", "ckey")}
    ca.cert_pem.write_to_path(paths["ca"])
    server.cert_chain_pems[0].write_to_path(paths["cert"])
    server.private_key_pem.write_to_path(paths["key"])
    other.private_key_pem.write_to_path(paths["other"])
    client.cert_chain_pems[0].write_to_path(paths["client"])
    client.private_key_pem.write_to_path(paths["ckey"])
    key = serialization.load_pem_private_key(server.private_key_pem.bytes(), password=None)
    paths["enc"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(KEY_PASSWORD.encode()),
        )
    )
    return TLSFiles(
        ca=ca,
        ca_cert=str(paths["ca"]),
        cert=str(paths["cert"]),
        key=str(paths["key"]),
        encrypted_key=str(paths["enc"]),
        other_key=str(paths["other"]),
        client_cert=str(paths["client"]),
        client_key=str(paths["ckey"]),
    )
