"""Mutual TLS: an HTTPS GitLab stand-in that requires a client certificate (trustme CAs).

Refused without one, with an error naming --client-cert and Poetry's
certificates.<repository>.client-cert; accepted with --client-cert, GITLAB_RELEASE_CLIENT_CERT,
pyproject and Poetry's setting; a broken PEM is a one-line configuration error; and the client
certificate is offered to GitLab's own origin only, never to another origin behind a redirect.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from poetry_gitlab_release.config.settings import (
    Settings,
    resolve_settings,
    with_poetry_client_certificate,
)
from poetry_gitlab_release.errors import EXIT_FAILURE, EXIT_USAGE, ConfigError, TLSError
from poetry_gitlab_release.gitlab.client import Auth, GitLabClient, RetryPolicy
from poetry_gitlab_release.tls import load_client_certificate
from sandbox.gitlab import GitLabStandIn

POETRY_CLIENT_CERT = "Poetry's certificates.gitlab.client-cert"


@pytest.fixture(scope="module")
def server_ca() -> trustme.CA:
    return trustme.CA(organization_name="GitLab server CA")


@pytest.fixture(scope="module")
def client_ca() -> trustme.CA:
    return trustme.CA(organization_name="GitLab client CA")


@pytest.fixture(scope="module")
def pems(
    server_ca: trustme.CA, client_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Files by name: the server CA, a good client PEM, one from an unknown CA, broken ones."""
    root = tmp_path_factory.mktemp("mtls")
    leaf = client_ca.issue_cert("ci-runner@example.com")
    stranger = trustme.CA().issue_cert("ci-runner@example.com")
    cert = leaf.cert_chain_pems[0].bytes()
    key = leaf.private_key_pem.bytes()
    encrypted = serialization.load_pem_private_key(key, None).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    contents = {
        "ca": server_ca.cert_pem.bytes(),
        "client": leaf.private_key_and_cert_chain_pem.bytes(),
        "stranger": stranger.private_key_and_cert_chain_pem.bytes(),
        "garbage": b"not a certificate\n",
        "cert-only": cert,
        "key-only": key,
        "encrypted-key": cert + encrypted,
        "wrong-key": cert + stranger.private_key_pem.bytes(),
    }
    paths = {}
    for name, content in contents.items():
        paths[name] = root / f"{name}.pem"
        paths[name].write_bytes(content)
    return paths


def _server_context(
    server_ca: trustme.CA, client_ca: trustme.CA, mode: ssl.VerifyMode = ssl.CERT_REQUIRED
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = mode
    context.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode())
    return context


@pytest.fixture(scope="module")
def mtls_gitlab(server_ca: trustme.CA, client_ca: trustme.CA) -> Iterator[GitLabStandIn]:
    with GitLabStandIn(tls_context=_server_context(server_ca, client_ca)) as gitlab:
        yield gitlab


@pytest.fixture(autouse=True)
def _no_ambient_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "GITLAB_RELEASE_CLIENT_CERT"):
        monkeypatch.delenv(name, raising=False)


def _settings(
    gitlab: GitLabStandIn | str,
    pems: dict[str, Path],
    env: dict[str, str] | None = None,
    pyproject: dict[str, object] | None = None,
    options: dict[str, object] | None = None,
) -> Settings:
    url, token = (
        (gitlab, "glpat-mtls") if isinstance(gitlab, str) else (gitlab.url, gitlab.tokens.personal)
    )
    base = {"GITLAB_HOST": url, "GITLAB_TOKEN": token, **(env or {})}
    return resolve_settings({"ca-file": str(pems["ca"]), **(options or {})}, base, pyproject)


def _client(settings: Settings) -> GitLabClient:
    return GitLabClient(settings, retry=RetryPolicy(attempts=3, base_delay=0.01))


def _fetch_group(settings: Settings) -> object:
    with _client(settings) as client:
        return client.get_json("/groups/demo-group")


def test_without_a_client_certificate_the_error_says_the_server_asked_for_one(
    mtls_gitlab: GitLabStandIn, pems: dict[str, Path]
) -> None:
    with _client(_settings(mtls_gitlab, pems)) as client:
        with pytest.raises(TLSError) as caught:
            client.get_json("/groups/demo-group")
        assert client.request_count == 1, "a refused handshake is not retried"
    message = str(caught.value)
    assert message == (
        f"127.0.0.1:{mtls_gitlab.port} asked for a TLS client certificate and none was given "
        "(pass --client-cert PEM, set GITLAB_RELEASE_CLIENT_CERT, or set Poetry's "
        "certificates.gitlab.client-cert: one PEM file with the certificate and its private key)"
    )
    assert caught.value.exit_code == EXIT_FAILURE


def test_accepted_with_the_option(mtls_gitlab: GitLabStandIn, pems: dict[str, Path]) -> None:
    settings = _settings(mtls_gitlab, pems, options={"client-cert": str(pems["client"])})
    assert settings.client_cert == pems["client"]
    assert settings.source_of("client-cert") == "--client-cert"
    group = _fetch_group(settings)
    assert isinstance(group, dict)
    assert group["full_path"] == "demo-group"


def test_accepted_from_the_environment(mtls_gitlab: GitLabStandIn, pems: dict[str, Path]) -> None:
    settings = _settings(mtls_gitlab, pems, env={"GITLAB_RELEASE_CLIENT_CERT": str(pems["client"])})
    assert settings.source_of("client-cert") == "GITLAB_RELEASE_CLIENT_CERT"
    assert isinstance(_fetch_group(settings), dict)


def test_accepted_from_pyproject(mtls_gitlab: GitLabStandIn, pems: dict[str, Path]) -> None:
    settings = _settings(mtls_gitlab, pems, pyproject={"client-cert": str(pems["client"])})
    assert settings.source_of("client-cert").startswith("`client-cert` in [tool.")
    assert isinstance(_fetch_group(settings), dict)


def test_accepted_from_poetry_certificates(
    mtls_gitlab: GitLabStandIn, pems: dict[str, Path]
) -> None:
    settings = with_poetry_client_certificate(
        _settings(mtls_gitlab, pems), str(pems["client"]), where=POETRY_CLIENT_CERT
    )
    assert settings.client_cert == pems["client"]
    assert settings.source_of("client-cert") == POETRY_CLIENT_CERT
    assert isinstance(_fetch_group(settings), dict)


def test_precedence_option_env_pyproject_poetry(
    mtls_gitlab: GitLabStandIn, pems: dict[str, Path]
) -> None:
    good, bad = str(pems["client"]), str(pems["stranger"])
    # Each level holds the good certificate, every level below it the stranger's.
    option = _settings(
        mtls_gitlab,
        pems,
        env={"GITLAB_RELEASE_CLIENT_CERT": bad},
        pyproject={"client-cert": bad},
        options={"client-cert": good},
    )
    env = _settings(
        mtls_gitlab,
        pems,
        env={"GITLAB_RELEASE_CLIENT_CERT": good},
        pyproject={"client-cert": bad},
    )
    pyproject = _settings(mtls_gitlab, pems, pyproject={"client-cert": good})
    for settings in (option, env, pyproject):
        kept = with_poetry_client_certificate(settings, bad, where=POETRY_CLIENT_CERT)
        assert kept is settings
        assert kept.client_cert == pems["client"]
        assert isinstance(_fetch_group(kept), dict)


def test_a_certificate_from_an_unknown_ca_is_refused_by_the_server(
    mtls_gitlab: GitLabStandIn, pems: dict[str, Path]
) -> None:
    settings = _settings(mtls_gitlab, pems, options={"client-cert": str(pems["stranger"])})
    with _client(settings) as client:
        with pytest.raises(TLSError) as caught:
            client.get_json("/groups/demo-group")
        assert client.request_count == 1
    message = str(caught.value)
    assert message.startswith(
        f"127.0.0.1:{mtls_gitlab.port} refused the TLS client certificate from --client-cert "
        "(unknown ca) ("
    )
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("garbage", "no PEM certificate in it"),
        ("key-only", "no PEM certificate in it"),
        ("cert-only", "no private key in it"),
        ("encrypted-key", "its private key is encrypted"),
        ("wrong-key", "the private key does not belong to the certificate"),
    ],
)
@pytest.mark.parametrize("source", ["--client-cert", "GITLAB_RELEASE_CLIENT_CERT", "poetry"])
def test_an_unusable_pem_is_a_one_line_config_error(
    pems: dict[str, Path], name: str, problem: str, source: str
) -> None:
    path = str(pems[name])
    with pytest.raises(ConfigError) as caught:
        if source == "--client-cert":
            _settings("https://gitlab.example.com", pems, options={"client-cert": path})
        elif source == "GITLAB_RELEASE_CLIENT_CERT":
            _settings("https://gitlab.example.com", pems, env={source: path})
        else:
            settings = _settings("https://gitlab.example.com", pems)
            with_poetry_client_certificate(settings, path, where=POETRY_CLIENT_CERT)
    message = str(caught.value)
    where = POETRY_CLIENT_CERT if source == "poetry" else source
    assert message.startswith(f"invalid client certificate {path!r} from {where}: {problem}")
    assert "\n" not in message
    assert "BEGIN" not in message and "MII" not in message, "no PEM content in the message"
    assert caught.value.exit_code == EXIT_USAGE


def test_a_missing_file_is_a_config_error(pems: dict[str, Path], tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigError, match=r"'.*nope\.pem' from --client-cert: no such file"):
        _settings("https://gitlab.example.com", pems, options={"client-cert": str(missing)})


def test_an_encrypted_key_is_never_prompted_for(pems: dict[str, Path]) -> None:
    """Without a password callback OpenSSL would prompt on the terminal (it opens /dev/tty
    itself), hanging a CI job; the callback refuses instead."""
    seen: list[object] = []

    class Recorder:
        def load_cert_chain(self, certfile: str, password: object = None) -> None:
            seen.append(password)
            assert callable(password)
            password()  # what OpenSSL does on meeting an encrypted key

    with pytest.raises(ConfigError, match="its private key is encrypted"):
        load_client_certificate(Recorder(), pems["encrypted-key"], "--client-cert")
    assert len(seen) == 1


# --- redirects: the client certificate stays with GitLab's origin ------------------------------


class _Origin:
    """A bare HTTPS listener: /redirect?to=URL answers 302 to URL, anything else 200 'object'.

    It records, for each request, whether the peer presented a certificate.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.peer_certificates: list[bool] = []
        self.redirect_to = ""
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                origin.peer_certificates.append(bool(self.connection.getpeercert()))
                if self.path.startswith("/redirect") and origin.redirect_to:
                    self.send_response(302)
                    self.send_header("Location", origin.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "6")
                self.end_headers()
                self.wfile.write(b"object")

            def log_message(self, format: str, *args: object) -> None:
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a refused handshake is what some tests expect

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _Origin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize(
    "storage_mode",
    [ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED],
    ids=["storage-optional", "storage-required"],
)
def test_a_redirect_to_another_origin_gets_no_client_certificate(
    server_ca: trustme.CA, client_ca: trustme.CA, pems: dict[str, Path], storage_mode: int
) -> None:
    """GitLab (client certificate required) redirects a download to object storage, which
    would accept the client certificate (it trusts the same client CA) but must not see it."""
    home_context = _server_context(server_ca, client_ca)
    storage_context = _server_context(server_ca, client_ca, ssl.VerifyMode(storage_mode))
    with _Origin(home_context) as home, _Origin(storage_context) as storage:
        home.redirect_to = storage.url + "/bucket/file.whl?X-Amz-Signature=abc"
        settings = _settings(home.url, pems, options={"client-cert": str(pems["client"])})
        with _client(settings) as client:
            if storage_mode == ssl.CERT_OPTIONAL:
                response = client.request(
                    "GET", home.url + "/redirect", auth=Auth.BASIC, expected=(200,)
                )
                assert response.content == b"object"
                assert home.peer_certificates == [True], "GitLab's origin got the certificate"
                assert storage.peer_certificates == [False], "object storage did not"
                # A same-origin hop keeps it: GitLab would refuse the handshake otherwise.
                home.redirect_to = home.url + "/file"
                client.request("GET", home.url + "/redirect", expected=(200,))
                assert home.peer_certificates == [True, True, True]
                return
            with pytest.raises(TLSError) as caught:
                client.request("GET", home.url + "/redirect", expected=(200,))
    assert str(caught.value) == (
        f"127.0.0.1:{storage.url.rsplit(':', 1)[1]} asked for a TLS client certificate "
        "(it is presented to GitLab's own origin only, never to another one behind a redirect)"
    )


def test_over_tls_1_2_a_missing_client_certificate_is_a_handshake_failure(
    server_ca: trustme.CA, client_ca: trustme.CA, pems: dict[str, Path]
) -> None:
    """TLS 1.2 has no 'certificate required' alert: the advice comes with a hedge."""
    context = _server_context(server_ca, client_ca)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with GitLabStandIn(tls_context=context) as gitlab:
        with _client(_settings(gitlab, pems)) as client:
            with pytest.raises(TLSError) as caught:
                client.get_json("/groups/demo-group")
            assert client.request_count == 1
        assert str(caught.value) == (
            f"the TLS handshake with 127.0.0.1:{gitlab.port} failed (handshake failure) (if the "
            "server requires a client certificate, pass --client-cert PEM, set "
            "GITLAB_RELEASE_CLIENT_CERT, or set Poetry's certificates.gitlab.client-cert: one PEM "
            "file with the certificate and its private key)"
        )
        # With the certificate, TLS 1.2 works as well.
        good = _settings(gitlab, pems, options={"client-cert": str(pems["client"])})
        assert isinstance(_fetch_group(good), dict)
