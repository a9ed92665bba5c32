"""Transport safety through the real poetry executable: http:// refusal, Poetry's certificates."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
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


# --- mutual TLS through a real command: a stand-in that requires a client certificate ----------


@pytest.fixture(scope="module")
def mtls_standin(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GitLabStandIn, dict[str, Path]]]:
    server_ca, client_ca = trustme.CA(), trustme.CA()
    root = tmp_path_factory.mktemp("mtls")
    pems = {"ca": root / "ca.pem", "client": root / "client.pem", "no-key": root / "no-key.pem"}
    server_ca.cert_pem.write_to_path(str(pems["ca"]))
    leaf = client_ca.issue_cert("ci-runner@example.com")
    leaf.private_key_and_cert_chain_pem.write_to_path(str(pems["client"]))
    leaf.cert_chain_pems[0].write_to_path(str(pems["no-key"]))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(context)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=client_ca.cert_pem.bytes().decode())
    with GitLabStandIn(tls_context=context) as gitlab:
        yield gitlab, pems


@pytest.mark.parametrize(
    "source",
    ["none", "--client-cert", "GITLAB_RELEASE_CLIENT_CERT", "poetry-config", "poetry-env", "bad"],
)
def test_pipelines_over_mutual_tls(
    poetry_cli: PoetryCli,
    project: Path,
    mtls_standin: tuple[GitLabStandIn, dict[str, Path]],
    source: str,
) -> None:
    gitlab, pems = mtls_standin
    args = ["gitlab-pipelines", "--group", "demo-group", "--format", "json", "--host", gitlab.url]
    args += ["--ca-file", str(pems["ca"])]
    env = {"GITLAB_TOKEN": gitlab.tokens.personal}
    client = str(pems["client"])
    if source == "--client-cert":
        args += ["--client-cert", client]
    elif source == "GITLAB_RELEASE_CLIENT_CERT":
        env[source] = client
    elif source == "poetry-config":  # Poetry's config.toml, as `poetry config` writes it
        setup = poetry_cli.run("config", "certificates.gitlab.client-cert", client, cwd=project)
        assert setup.returncode == 0, setup.stderr
    elif source == "poetry-env":
        env["POETRY_CERTIFICATES_GITLAB_CLIENT_CERT"] = client
    elif source == "bad":
        args += ["--client-cert", str(pems["no-key"])]
    result = poetry_cli.run(*args, cwd=project, env=env)
    errors = result.stderr.strip().splitlines()
    if source == "none":
        assert result.returncode == 1, result.stderr
        assert errors == [
            (
                f"Error: 127.0.0.1:{gitlab.port} asked for a TLS client certificate and none was "
                "given (pass --client-cert PEM, set GITLAB_RELEASE_CLIENT_CERT, or set Poetry's "
                "certificates.gitlab.client-cert: one PEM file with the certificate and its private "
                "key)"
            )
        ]
        return
    if source == "bad":
        assert result.returncode == EXIT_USAGE, result.stderr
        assert errors == [
            (
                f"Error: invalid client certificate {str(pems['no-key'])!r} from --client-cert: "
                "no private key in it (put the certificate and its private key in one PEM file)"
            )
        ]
        return
    # (the exit code reflects the pipelines' states; the stand-in has failed ones)
    assert result.stderr == "", result.stderr
    snapshot = json.loads(result.stdout)
    assert snapshot, "the dashboard was fetched over mutual TLS"


def test_configure_writes_the_client_certificate_idempotently(
    poetry_cli: PoetryCli, project: Path, mtls_standin: tuple[GitLabStandIn, dict[str, Path]]
) -> None:
    _, pems = mtls_standin
    client = pems["client"].resolve()
    code, output = configure(
        poetry_cli, project, "https://gitlab.example.com", "--client-cert", str(pems["client"])
    )
    assert code == 0, output
    assert f"certificates.gitlab.client-cert = {client}" in output
    assert "PRIVATE KEY" not in output
    written = (project / "poetry.toml").read_text()
    assert "[certificates.gitlab]" in written and f'client-cert = "{client}"' in written
    # Poetry itself reads it back as the repository's client certificate.
    script = (
        "from pathlib import Path\n"
        "from poetry.factory import Factory\n"
        "from poetry.utils.authenticator import RepositoryCertificateConfig\n"
        "config = Factory().create_poetry(Path.cwd()).config\n"
        "print(RepositoryCertificateConfig.create('gitlab', config).client_cert)\n"
    )
    check = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=poetry_cli.environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.stdout.strip() == str(client), check.stderr
    # Again: unchanged, and the file is not rewritten.
    code, output = configure(
        poetry_cli, project, "https://gitlab.example.com", "--client-cert", str(pems["client"])
    )
    assert code == 0, output
    line = next(line for line in output.splitlines() if "certificates.gitlab.client-cert" in line)
    assert "unchanged" in line
    assert (project / "poetry.toml").read_text() == written
