"""A throw-away CA and server certificate for 127.0.0.1, and clients that still speak TLS 1.0/1.1."""

import ssl
import warnings
from pathlib import Path

import trustme


def write_server_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    return certfile, keyfile


def allow_old_versions(context: ssl.SSLContext, newest: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED) -> None:
    """Let `context` negotiate TLS 1.0 up to `newest`, so that refusing an old version is the peer's doing."""
    with warnings.catch_warnings(category=DeprecationWarning, action="ignore"):
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = newest
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
