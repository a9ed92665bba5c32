"""Transport safety through the real poetry executable: http:// refusal, Poetry's certificates."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from poetry_gitlab_release.errors import EXIT_USAGE
from sandbox.gitlab import GitLabStandIn
from tests.fixtures.poetry import PoetryCli, make_project

pytestmark = pytest.mark.e2e

TOKEN = "glpat-transport-secret-0001"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, "hello-transport", "0.1.0")


def configure(
    cli: PoetryCli, project: Path, host: str, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    result = cli.run(
        "gitlab-release",
        "--steps",
        "configure",
        "--host",
        host,
        "--gitlab-project",
        "acme/hello-transport",
        *extra,
        cwd=project,
        env={"GITLAB_TOKEN": TOKEN, **(env or {})},
    )
    return result.returncode, result.stdout + result.stderr


@pytest.mark.parametrize(
    "host", ["http://gitlab.example.com", "http://10.0.0.5:8080", "http://[2001:db8::1]"]
)
def test_plain_http_to_another_host_is_refused(
    poetry_cli: PoetryCli, project: Path, host: str
) -> None:
    code, output = configure(poetry_cli, project, host)
    assert code == EXIT_USAGE, output
    assert "refusing plain http://" in output
    assert "--allow-insecure-http" in output
    assert TOKEN not in output
    assert not (project / "poetry.toml").exists(), "nothing is written when refused"


def test_plain_http_from_the_environment_is_refused_too(
    poetry_cli: PoetryCli, project: Path
) -> None:
    result = poetry_cli.run(
        "gitlab-release",
        "--steps",
        "configure",
        "--gitlab-project",
        "acme/hello-transport",
        cwd=project,
        env={"GITLAB_TOKEN": TOKEN, "GITLAB_HOST": "http://gitlab.example.com"},
    )
    assert result.returncode == EXIT_USAGE, result.stderr
    assert "from GITLAB_HOST" in result.stderr


def test_allow_insecure_http_lets_it_through(poetry_cli: PoetryCli, project: Path) -> None:
    code, output = configure(
        poetry_cli, project, "http://gitlab.example.com", "--allow-insecure-http"
    )
    assert code == 0, output
    assert "http://gitlab.example.com/api/v4/projects/" in output


def test_loopback_http_is_allowed(poetry_cli: PoetryCli, project: Path) -> None:
    code, output = configure(poetry_cli, project, "http://127.0.0.1:9")
    assert code == 0, output


def test_poetry_cert_false_is_refused(poetry_cli: PoetryCli, project: Path) -> None:
    code, output = configure(
        poetry_cli,
        project,
        "https://gitlab.example.com",
        env={"POETRY_CERTIFICATES_GITLAB_CERT": "false"},
    )
    assert code == EXIT_USAGE, output
    assert "Poetry's certificates.gitlab.cert is false" in output
    assert "never does that" in output


def test_poetry_cert_false_in_config_file_is_refused(poetry_cli: PoetryCli, project: Path) -> None:
    setup = poetry_cli.run("config", "certificates.gitlab.cert", "false", cwd=project)
    assert setup.returncode == 0, setup.stderr
    code, output = configure(poetry_cli, project, "https://gitlab.example.com")
    assert code == EXIT_USAGE, output
    assert "would turn TLS verification off" in output


def test_poetry_cert_is_used_as_the_ca_file(
    poetry_cli: PoetryCli, project: Path, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    setup = poetry_cli.run("config", "certificates.gitlab.cert", str(ca), cwd=project)
    assert setup.returncode == 0, setup.stderr
    code, output = configure(poetry_cli, project, "https://gitlab.example.com")
    assert code == 0, output
    # configure records the CA it resolved (from Poetry's config) for the project's repository.
    assert f"certificates.gitlab.cert = {ca.resolve()}" in output


def test_ca_file_option_beats_poetry_cert_false(
    poetry_cli: PoetryCli, project: Path, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    code, output = configure(
        poetry_cli,
        project,
        "https://gitlab.example.com",
        "--ca-file",
        str(ca),
        env={"POETRY_CERTIFICATES_GITLAB_CERT": "false"},
    )
    assert code == 0, output


# --- TLS through a real command: gitlab-pipelines against an HTTPS stand-in with a private CA --


@pytest.fixture(scope="module")
def https_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GitLabStandIn, Path]]:
    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with GitLabStandIn(tls_context=context) as gitlab:
        yield gitlab, pem


@pytest.mark.parametrize("trust", ["none", "--ca-file", "poetry-cert", "SSL_CERT_FILE"])
def test_pipelines_over_https_with_a_private_ca(
    poetry_cli: PoetryCli,
    project: Path,
    https_standin: tuple[GitLabStandIn, Path],
    trust: str,
) -> None:
    gitlab, pem = https_standin
    args = ["gitlab-pipelines", "--group", "demo-group", "--format", "json", "--host", gitlab.url]
    env = {"GITLAB_TOKEN": gitlab.tokens.personal}
    if trust == "--ca-file":
        args += ["--ca-file", str(pem)]
    elif trust == "poetry-cert":
        env["POETRY_CERTIFICATES_GITLAB_CERT"] = str(pem)
    elif trust == "SSL_CERT_FILE":
        env["SSL_CERT_FILE"] = str(pem)
    result = poetry_cli.run(*args, cwd=project, env=env)
    if trust == "none":
        assert result.returncode == 1, result.stderr
        assert "TLS verification failed for 127.0.0.1:" in result.stderr
        assert "--ca-file" in result.stderr and "certificates.gitlab.cert" in result.stderr
        return
    assert "TLS" not in result.stderr, result.stderr
    snapshot = json.loads(result.stdout)
    assert snapshot, "the dashboard was fetched over HTTPS"
