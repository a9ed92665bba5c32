"""TLS against an HTTPS GitLab stand-in with a private CA (trustme).

Refused by default with an error naming the ways to trust the CA; accepted with --ca-file
(settings), with Poetry's certificates.<repository>.cert, and with SSL_CERT_FILE; never accepted
by turning verification off.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from poetry_gitlab_release.config.poetry_sources import with_poetry_certificate
from poetry_gitlab_release.config.settings import Settings, resolve_settings
from poetry_gitlab_release.errors import EXIT_FAILURE, EXIT_USAGE, ConfigError, TLSError
from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
from poetry_gitlab_release.gitlab.connection import Connection
from poetry_gitlab_release.tls import ssl_context
from sandbox.gitlab import GitLabStandIn

POETRY_CERT_SOURCE = "Poetry's certificates.gitlab.cert"


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA(organization_name="poetry-gitlab-release test CA")


@pytest.fixture(scope="module")
def ca_pem(private_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    private_ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture(scope="module")
def other_ca_pem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other-ca") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


@pytest.fixture(scope="module")
def https_gitlab(private_ca: trustme.CA) -> Iterator[GitLabStandIn]:
    with GitLabStandIn(tls_context=_server_context(private_ca, "127.0.0.1", "localhost")) as g:
        yield g


@pytest.fixture(autouse=True)
def _no_ambient_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "POETRY_CERTIFICATES_GITLAB_CERT"):
        monkeypatch.delenv(name, raising=False)


def _settings(gitlab: GitLabStandIn, **options: object) -> Settings:
    env = {"GITLAB_HOST": gitlab.url, "GITLAB_TOKEN": gitlab.tokens.personal}
    return resolve_settings(options, env)


def _fetch_group(settings: Settings) -> object:
    with GitLabClient(
        Connection.from_settings(settings), retry=RetryPolicy(attempts=3, base_delay=0.01)
    ) as client:
        return client.get_json("/groups/demo-group")


def test_stand_in_serves_https(https_gitlab: GitLabStandIn) -> None:
    assert https_gitlab.api_url.startswith("https://127.0.0.1:")


def test_refused_by_default_with_an_actionable_error(https_gitlab: GitLabStandIn) -> None:
    settings = _settings(https_gitlab)
    with GitLabClient(
        Connection.from_settings(settings), retry=RetryPolicy(attempts=3, base_delay=0.01)
    ) as client:
        with pytest.raises(TLSError) as caught:
            client.get_json("/groups/demo-group")
        assert client.request_count == 1, "a certificate failure is not retried"
    message = str(caught.value)
    assert "\n" not in message
    assert "TLS verification failed for 127.0.0.1:" in message
    assert "unable to get local issuer certificate" in message
    for option in ("--ca-file", "GITLAB_RELEASE_CA_FILE", "certificates.gitlab.cert"):
        assert option in message
    assert "SSL_CERT_FILE" in message
    assert caught.value.exit_code == EXIT_FAILURE


def test_accepted_with_ca_file(https_gitlab: GitLabStandIn, ca_pem: Path) -> None:
    settings = _settings(https_gitlab, **{"ca-file": str(ca_pem)})
    assert settings.source_of("ca-file") == "--ca-file"
    group = _fetch_group(settings)
    assert isinstance(group, dict)
    assert group["full_path"] == "demo-group"


def test_accepted_with_ssl_cert_file(
    https_gitlab: GitLabStandIn, ca_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
    assert isinstance(_fetch_group(_settings(https_gitlab)), dict)


def test_accepted_with_poetry_certificate(https_gitlab: GitLabStandIn, ca_pem: Path) -> None:
    settings = with_poetry_certificate(
        _settings(https_gitlab), str(ca_pem), verify=True, where=POETRY_CERT_SOURCE
    )
    assert settings.ca_file == ca_pem
    assert settings.source_of("ca-file") == POETRY_CERT_SOURCE
    assert isinstance(_fetch_group(settings), dict)


def test_ca_file_beats_poetry_certificate_which_beats_ssl_cert_file(
    https_gitlab: GitLabStandIn, ca_pem: Path, other_ca_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --ca-file (right CA) wins over Poetry's (wrong CA).
    explicit = _settings(https_gitlab, **{"ca-file": str(ca_pem)})
    kept = with_poetry_certificate(explicit, str(other_ca_pem), verify=True, where="x")
    assert kept.ca_file == ca_pem
    assert isinstance(_fetch_group(kept), dict)
    # Poetry's (right CA) wins over SSL_CERT_FILE (wrong CA).
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca_pem))
    with pytest.raises(TLSError):
        _fetch_group(_settings(https_gitlab))
    poetry = with_poetry_certificate(
        _settings(https_gitlab), str(ca_pem), verify=True, where=POETRY_CERT_SOURCE
    )
    assert isinstance(_fetch_group(poetry), dict)


@pytest.mark.parametrize("cert", [None, "false", "FALSE"])
def test_poetry_cert_false_is_refused_not_obeyed(https_gitlab: GitLabStandIn, cert: str) -> None:
    verify = cert is not None  # None + verify=False: `poetry config certificates.gitlab.cert false`
    with pytest.raises(ConfigError) as caught:
        with_poetry_certificate(_settings(https_gitlab), cert, verify=verify, where="Poetry's x")
    message = str(caught.value)
    assert "would turn TLS verification off" in message
    assert "--ca-file" in message
    assert caught.value.exit_code == EXIT_USAGE


def test_poetry_cert_false_is_irrelevant_when_a_ca_file_is_given(
    https_gitlab: GitLabStandIn, ca_pem: Path
) -> None:
    explicit = _settings(https_gitlab, **{"ca-file": str(ca_pem)})
    assert with_poetry_certificate(explicit, None, verify=False, where="x") is explicit


def test_poetry_cert_naming_a_missing_file_is_a_config_error(
    https_gitlab: GitLabStandIn, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="from Poetry's x: no such file"):
        with_poetry_certificate(
            _settings(https_gitlab), str(tmp_path / "nope.pem"), verify=True, where="Poetry's x"
        )


def test_hostname_is_checked_even_with_the_right_ca(private_ca: trustme.CA, ca_pem: Path) -> None:
    context = _server_context(private_ca, "gitlab.example.com")  # not 127.0.0.1
    with (
        GitLabStandIn(tls_context=context) as gitlab,
        pytest.raises(TLSError, match=r"IP address mismatch|Hostname mismatch"),
    ):
        _fetch_group(_settings(gitlab, **{"ca-file": str(ca_pem)}))


def test_broken_ssl_cert_file_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError, match="SSL_CERT_FILE"):
        ssl_context(None)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot load CA file"):
        ssl_context(garbage)


@pytest.mark.parametrize("use_ca_file", [False, True])
def test_every_context_verifies(
    use_ca_file: bool, ca_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not use_ca_file:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_pem))
    context = ssl_context(ca_pem if use_ca_file else None)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True


def test_no_source_turns_verification_off() -> None:
    """No code path may build an unverified context: scan our sources for the ways to do it."""
    root = Path(__file__).resolve().parents[2] / "src"
    forbidden = ("verify=False", "CERT_NONE", "check_hostname = False", "_create_unverified")
    offenders = [
        f"{path.relative_to(root)}: {needle}"
        for path in root.rglob("*.py")
        for needle in forbidden
        if needle in path.read_text(encoding="utf-8")
    ]
    assert offenders == []


def test_other_hosts_trust_the_usual_bundle_and_the_ca_file(
    private_ca: trustme.CA, ca_pem: Path, tmp_path: Path
) -> None:
    """pypi.org (or object storage) behind --ca-file: the private CA is added to the public
    roots, not put in their place, while GitLab's own origin trusts the CA file alone."""
    import certifi

    from poetry_gitlab_release.tls import other_hosts_context

    def subjects(context: ssl.SSLContext) -> set[str]:
        return {str(cert["subject"]) for cert in context.get_ca_certs()}

    public = ssl.create_default_context(cafile=certifi.where())
    private = subjects(ssl_context(ca_pem))
    both = subjects(other_hosts_context(ca_pem))
    assert private < both and subjects(public) <= both
    assert not subjects(public) <= private  # GitLab's own origin: the CA file alone
    broken = tmp_path / "broken.pem"
    broken.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot load CA file"):
        other_hosts_context(broken)
