"""A throwaway test PKI for the executor's mutual TLS: a CA, the identities it issues, a foreign
CA's client and an expired client, written as the PEM files `--tls-dir` folders hold.

ECDSA P-256 throughout, like the stack's own PKI (@pulumi/tls in components/). Certificates are
valid from an hour ago so clock skew between the test process and gRPC never matters.
"""

import datetime
import json
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PLATFORM_FILE = Path(__file__).resolve().parents[1] / "docker" / "platform.json"
_SKEW = datetime.timedelta(hours=1)
_LIFETIME = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key; a CA is an identity whose certificate signs others."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def executor_alias() -> str:
    """The name the executor's certificate carries: platform.json aliases.executor, the host
    name clients dial on the stack's network."""
    alias: str = json.loads(PLATFORM_FILE.read_text())["aliases"]["executor"]
    return alias


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_ca(common_name: str = "vpe test CA") -> Identity:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = _new_key()
    start = _now() - _SKEW
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Identity(cert, key)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def issue(
    ca: Identity,
    common_name: str,
    usages: list[x509.ObjectIdentifier],
    dns_names: tuple[str, ...] = (),
    not_after: datetime.datetime | None = None,
) -> Identity:
    """A leaf certificate signed by `ca` for the extended key usages given; valid for a week
    unless `not_after` says otherwise (the past, for an expired certificate)."""
    key = _new_key()
    end = not_after or _now() + _LIFETIME
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(min(_now(), end) - _SKEW)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if dns_names:
        names = [x509.DNSName(name) for name in dns_names]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Identity(builder.sign(ca.key, hashes.SHA256()), key)


def server_identity(ca: Identity) -> Identity:
    """The executor's identity: named by its alias, and allowed as a client too, because its
    healthcheck dials the server with this same certificate."""
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    return issue(ca, executor_alias(), usages, dns_names=(executor_alias(),))


def client_identity(ca: Identity, common_name: str = "airflow-worker") -> Identity:
    return issue(ca, common_name, [ExtendedKeyUsageOID.CLIENT_AUTH])


def foreign_client_identity() -> tuple[Identity, Identity]:
    """(foreign CA, a client it issued): well formed, but from a CA the executor never trusted."""
    foreign_ca = make_ca("foreign CA")
    return foreign_ca, client_identity(foreign_ca, "intruder")


def expired_client_identity(ca: Identity) -> Identity:
    """A client certificate from the right CA whose validity ended a day ago."""
    return issue(
        ca,
        "expired-client",
        [ExtendedKeyUsageOID.CLIENT_AUTH],
        not_after=_now() - datetime.timedelta(days=1),
    )


def tls_file_names() -> tuple[str, str, str]:
    """(CA, certificate, key) file names of a TLS folder: platform.json tls."""
    tls = json.loads(PLATFORM_FILE.read_text())["tls"]
    return tls["caFile"], tls["certFile"], tls["keyFile"]


def write_tls_dir(directory: Path, ca: Identity, identity: Identity) -> Path:
    """A `--tls-dir` folder: the CA to trust, this party's certificate and its key (0600, as a
    key file should be)."""
    ca_file, cert_file, key_file = tls_file_names()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ca_file).write_bytes(ca.cert_pem)
    (directory / cert_file).write_bytes(identity.cert_pem)
    key_path = directory / key_file
    key_path.write_bytes(identity.key_pem)
    key_path.chmod(0o600)
    return directory


@dataclass(frozen=True)
class TestPki:
    """Everything the adversarial tests need, from one CA plus a foreign one."""

    __test__ = False  # a data holder, not a pytest test class

    ca: Identity
    server: Identity
    client: Identity
    expired_client: Identity
    foreign_ca: Identity
    foreign_client: Identity


def make_test_pki() -> TestPki:
    ca = make_ca()
    foreign_ca, foreign_client = foreign_client_identity()
    return TestPki(
        ca=ca,
        server=server_identity(ca),
        client=client_identity(ca),
        expired_client=expired_client_identity(ca),
        foreign_ca=foreign_ca,
        foreign_client=foreign_client,
    )
