"""Mutual TLS material: the stack's CA, this party's certificate and its key, as files.

The stack delivers the three files into platform.json tls.dir (names tls.caFile, tls.certFile,
tls.keyFile). The server accepts only clients presenting a certificate from that CA; the
executor's own certificate also allows client use, so its healthcheck can identify with it.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from vpe_executor.platform_config import lookup


class TlsError(ValueError):
    """A TLS file is missing, unreadable or empty; the message names it."""


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def for_platform(cls, platform: dict[str, Any], directory: Path | None = None) -> "TlsFiles":
        """The files platform.json names, in `directory` (default: its tls.dir)."""
        directory = directory or Path(lookup(platform, "tls.dir"))
        return cls(
            ca=directory / lookup(platform, "tls.caFile"),
            cert=directory / lookup(platform, "tls.certFile"),
            key=directory / lookup(platform, "tls.keyFile"),
        )

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA certificate, certificate chain, private key), PEM."""
        return (
            _read(self.ca, "CA certificate"),
            _read(self.cert, "certificate"),
            _read(self.key, "key"),
        )


def _read(path: Path, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TlsError(f"TLS {what} {path}: cannot read: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise TlsError(f"TLS {what} {path}: expected a PEM file")
    return data


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    ca, cert, key = files.read()
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(files: TlsFiles) -> grpc.ChannelCredentials:
    ca, cert, key = files.read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )
