"""What `creditgate serve` hands uvicorn: a TLS context refusing TLS 1.1 and older (RELIABILITY T1), and proxy
trust from TRUSTED_PROXIES only, never uvicorn's default of 127.0.0.1 (RELIABILITY §4 decision 5)."""

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
import trustme
import uvicorn

from entrypoints import cli
from entrypoints.cli import tls_context
from entrypoints.settings import HttpSettings, Settings
from tests.support.settings import replace_settings
from tests.support.tls import allow_old_versions, write_server_cert


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA, tmp_path: Path) -> ssl.SSLContext:
    certfile, keyfile = write_server_cert(ca, tmp_path)
    config = uvicorn.Config("entrypoints.http.asgi:app_from_environment", ssl_certfile=certfile, ssl_keyfile=keyfile)
    return tls_context(config, lambda: _permissive(certfile, keyfile))


def _permissive(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A default that would accept TLS 1.0 and 1.1, so that the refusal is tls_context's doing."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    allow_old_versions(context)
    return context


def _handshake(server: ssl.SSLContext, ca: trustme.CA, newest: ssl.TLSVersion) -> str | None:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    allow_old_versions(client, newest)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=_accept_one, args=(listener, server), daemon=True)
        thread.start()
        with (
            socket.create_connection(listener.getsockname()) as raw,
            client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            version = tls.version()
        thread.join(5)
    return version


def _accept_one(listener: socket.socket, server: ssl.SSLContext) -> None:
    connection, _ = listener.accept()
    try:
        server.wrap_socket(connection, server_side=True).close()
    except ssl.SSLError:
        connection.close()


def test_tls_1_1_is_refused_by_the_server_and_tls_1_2_accepted(ca: trustme.CA, tmp_path: Path) -> None:
    server = _server_context(ca, tmp_path)
    assert server.minimum_version is ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError, match="PROTOCOL_VERSION"):
        _handshake(server, ca, ssl.TLSVersion.TLSv1_1)
    assert _handshake(server, ca, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"


def test_the_test_client_can_speak_tls_1_1(ca: trustme.CA, tmp_path: Path) -> None:
    """Without this the refusal above could be the client's own."""
    certfile, keyfile = write_server_cert(ca, tmp_path)
    assert _handshake(_permissive(certfile, keyfile), ca, ssl.TLSVersion.TLSv1_1) == "TLSv1.1"


def _uvicorn_options(monkeypatch: pytest.MonkeyPatch, settings: Settings, *argv: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **kwargs: options.update(kwargs))
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)
    args = cli._parser().parse_args(["serve", "--no-migrate", *argv])
    args.run(args, replace_settings(settings, database={"url": "postgresql://unused"}, local_model={"mode": "off"}))
    return options


def test_no_proxy_headers_are_trusted_unless_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _uvicorn_options(monkeypatch, Settings())
    assert options["proxy_headers"] is False
    assert options["forwarded_allow_ips"] == []
    assert options["ssl_context_factory"] is None


def test_trusted_proxies_become_uvicorn_s_forwarded_allow_ips(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _uvicorn_options(monkeypatch, Settings(http=HttpSettings(trusted_proxies="10.0.0.1, 10.1.0.0/16")))
    assert options["proxy_headers"] is True
    assert options["forwarded_allow_ips"] == ["10.0.0.1", "10.1.0.0/16"]


def test_serving_tls_uses_the_strict_context(monkeypatch: pytest.MonkeyPatch) -> None:
    options = _uvicorn_options(monkeypatch, Settings(), "--ssl-certfile", "c.pem", "--ssl-keyfile", "k.pem")
    assert options["ssl_context_factory"] is tls_context
    assert (options["ssl_certfile"], options["ssl_keyfile"]) == ("c.pem", "k.pem")
