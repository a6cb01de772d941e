"""Self-signed OPC-UA application certificates (RSA-2048, SHA-256) made with `cryptography`.

The box makes its own client identity on first use and keeps it: an installer trusts its
certificate once on each device, so regenerating it would break every secure connection.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "client-cert.der"
KEY_FILE = "client-key.pem"
VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Identity:
    cert_path: str
    key_path: str
    application_uri: str
    thumbprint: str  # SHA-1 of the DER, as OPC-UA tools show it
    created: bool


def thumbprint(der: bytes) -> str:
    return hashlib.sha1(der, usedforsecurity=False).hexdigest()


def make_certificate(
    common_name: str,
    application_uri: str,
    *,
    server: bool,
    hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
    now: datetime.datetime | None = None,
) -> tuple[bytes, bytes]:
    """A self-signed application certificate (DER) and its private key (PEM, PKCS#8)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for h in (*hosts, socket.gethostname()):
        try:
            san.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            san.append(x509.DNSName(h))
    start = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(days=1)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(san))), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.DER), pem


def _write_private(path: Path, data: bytes) -> None:
    """Create with mode 0600 from the start: the key is never readable by others, not even
    for an instant."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def box_pki_dir(storage_path: str) -> str:
    """Where the box keeps its OPC-UA identity: beside its database."""
    return os.path.join(os.path.dirname(os.path.abspath(storage_path)), "opcua-pki")


def box_application_uri(venue_id: str) -> str:
    return f"urn:beerflow-edge:{venue_id}"


def ensure_identity(directory: str | Path, application_uri: str) -> Identity:
    """Load the box's client identity from `directory`, creating it on first use."""
    d = Path(directory)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert_path, key_path = d / CERT_FILE, d / KEY_FILE
    created = False
    if cert_path.exists() and key_path.exists():
        der = cert_path.read_bytes()
        cert = x509.load_der_x509_certificate(der)
        uris = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.UniformResourceIdentifier)
        if application_uri not in uris:
            # A renamed venue: the old identity no longer matches; make a new one.
            der = b""
    else:
        der = b""
    if not der:
        der, pem = make_certificate("BeerFlow Edge", application_uri, server=False)
        _write_private(key_path, pem)
        tmp = cert_path.with_suffix(".tmp")
        tmp.write_bytes(der)
        os.replace(tmp, cert_path)
        created = True
    return Identity(str(cert_path), str(key_path), application_uri, thumbprint(der), created)
