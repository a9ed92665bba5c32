"""`poetry gitlab-release --steps configure` through the real poetry executable."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.fixtures.poetry import PoetryCli, make_project

TOKEN = "glpat-configure-secret-0001"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, "hello-configure", "0.3.0")


def configure(
    cli: PoetryCli, project: Path, *extra: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    result = cli.run(
        "gitlab-release",
        "--steps",
        "configure",
        "--host",
        "http://127.0.0.1:9",
        "--gitlab-project",
        "acme/hello-configure",
        *extra,
        cwd=project,
        env={"GITLAB_TOKEN": TOKEN, **(env or {})},
    )
    return result.returncode, result.stdout + result.stderr


def read_back(cli: PoetryCli, project: Path, script: str) -> str:
    """Read the configuration through Poetry's own API, in a process with the test's environment."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project,
        env=cli.environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_configure_writes_poetry_config_and_is_idempotent(
    poetry_cli: PoetryCli, project: Path
) -> None:
    code, output = configure(poetry_cli, project, "-vvv")
    assert code == 0, output
    assert (
        "set       repositories.gitlab.url = http://127.0.0.1:9/api/v4/projects/acme%2Fhello-configure/packages/pypi"
        in output
    )
    assert "set       http-basic.gitlab = __token__:********" in output
    assert "set       virtualenvs.in-project = true" in output
    assert TOKEN not in output

    script = textwrap.dedent(
        """
        from pathlib import Path
        from poetry.factory import Factory
        from poetry.utils.password_manager import PasswordManager
        poetry = Factory().create_poetry(Path.cwd())
        auth = PasswordManager(poetry.config).get_http_auth("gitlab")
        print(poetry.config.get("repositories.gitlab.url"))
        print(poetry.config.get("virtualenvs.in-project"))
        print(auth.username, auth.password)
        """
    )
    url, in_project, auth = read_back(poetry_cli, project, script).splitlines()
    assert url == "http://127.0.0.1:9/api/v4/projects/acme%2Fhello-configure/packages/pypi"
    assert in_project == "True"
    assert auth == f"__token__ {TOKEN}"

    before = (project / "poetry.toml").read_text()
    code, output = configure(poetry_cli, project)
    assert code == 0, output
    assert "set " not in output
    assert output.count("unchanged") == 3
    assert (project / "poetry.toml").read_text() == before


def test_configure_for_job_token_and_ca_file(
    poetry_cli: PoetryCli, project: Path, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    ci = {
        "GITLAB_CI": "true",
        "CI_SERVER_URL": "http://127.0.0.1:9",
        "CI_API_V4_URL": "http://127.0.0.1:9/api/v4",
        "CI_PROJECT_ID": "1001",
        "CI_PROJECT_PATH": "acme/hello-configure",
        "CI_JOB_TOKEN": "glcbt-job-token-value",
    }
    result = poetry_cli.run(
        "gitlab-release",
        "--steps",
        "configure",
        "--ca-file",
        str(ca_file),
        "--repository",
        "internal",
        cwd=project,
        env=ci,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "http-basic.internal = gitlab-ci-token:********" in output
    assert (
        "repositories.internal.url = http://127.0.0.1:9/api/v4/projects/1001/packages/pypi"
        in output
    )
    assert f"certificates.internal.cert = {ca_file.resolve()}" in output
    assert "glcbt-job-token-value" not in output


def test_poetry_publish_dry_run_uses_the_configured_repository(
    poetry_cli: PoetryCli, project: Path
) -> None:
    code, output = configure(poetry_cli, project)
    assert code == 0, output
    built = poetry_cli.run("build", cwd=project)
    assert built.returncode == 0, built.stderr
    result = poetry_cli.run("publish", "-r", "gitlab", "--dry-run", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Publishing hello-configure (0.3.0) to gitlab" in result.stdout
    shutil.rmtree(project / "dist")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--steps", "configure,teleport"], {}, "Error: unknown step 'teleport'"),
        (
            ["--steps", "configure", "--host", "ftp://x"],
            {},
            "Error: invalid URL 'ftp://x' from --host",
        ),
        (
            ["--steps", "configure", "--no-such-option"],
            {},
            'Error: The option "--no-such-option" does not exist',
        ),
        (
            ["--steps", "configure"],
            {"GITLAB_TOKEN": "glpat-x"},
            "Error: missing project: pass --gitlab-project",
        ),
        (
            ["--steps", "configure", "--gitlab-project", "a/b"],
            {},
            "Error: no GitLab token for the PyPI registry",
        ),
    ],
)
def test_bad_input_is_one_line_with_exit_2(
    poetry_cli: PoetryCli, project: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = poetry_cli.run("gitlab-release", *args, cwd=project, env=env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("Error")]) == 1


def test_bad_pyproject_table_names_the_key(poetry_cli: PoetryCli, project: Path) -> None:
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.poetry-gitlab-release]\nrepository = "gitlab"\nregistry = "x"\n')
    code, output = configure(poetry_cli, project)
    assert code == 2
    assert "unknown key 'registry' in [tool.poetry-gitlab-release]" in output


def test_outside_a_project_is_a_usage_error_that_says_how_to_point_at_one(
    poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    result = poetry_cli.run("gitlab-release", "--steps", "build", cwd=tmp_path)
    assert result.returncode == 2
    assert f"Error: Poetry could not find a pyproject.toml file in {tmp_path}" in result.stderr
    assert "use -C DIR to point at one" in result.stderr


def test_directory_option_points_at_the_project(
    poetry_cli: PoetryCli, project: Path, tmp_path: Path
) -> None:
    with (project / "pyproject.toml").open("a") as handle:
        handle.write('\n[tool.poetry-gitlab-release]\nrepository = "elsewhere"\n')
    result = poetry_cli.run(
        "-C",
        str(project),
        "gitlab-release",
        "--steps",
        "configure",
        "--host",
        "http://127.0.0.1:9",
        "--gitlab-project",
        "a/b",
        cwd=tmp_path,
        env={"GITLAB_TOKEN": TOKEN},
    )
    assert result.returncode == 0, result.stderr
    assert "repositories.elsewhere.url" in result.stdout  # the table of the -C project was read
