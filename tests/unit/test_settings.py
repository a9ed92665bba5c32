from __future__ import annotations

from pathlib import Path

import pytest

from poetry_gitlab_release.config.credentials import Secret, TokenKind
from poetry_gitlab_release.config.settings import pyproject_table, resolve_settings
from poetry_gitlab_release.errors import EXIT_USAGE, ConfigError

CI_ENV = {
    "GITLAB_CI": "true",
    "CI_SERVER_URL": "https://gitlab.example.com",
    "CI_API_V4_URL": "https://gitlab.example.com/api/v4",
    "CI_API_GRAPHQL_URL": "https://gitlab.example.com/api/graphql",
    "CI_PROJECT_ID": "42",
    "CI_PROJECT_PATH": "acme/tools/hello",
    "CI_PROJECT_URL": "https://gitlab.example.com/acme/tools/hello",
    "CI_JOB_TOKEN": "glcbt-job-secret",
    "CI_COMMIT_TAG": "v1.2.3",
    "CI_COMMIT_REF_NAME": "v1.2.3",
    "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
    "CI_DEFAULT_BRANCH": "main",
    "CI_CONFIG_PATH": "ci/release.yml",
    "SIGSTORE_ID_TOKEN": "eyJ.id.token",
}


def test_defaults_outside_ci() -> None:
    settings = resolve_settings({}, {})
    assert settings.server_url == "https://gitlab.com"
    assert settings.api_url == "https://gitlab.com/api/v4"
    assert settings.graphql_url == "https://gitlab.com/api/graphql"
    assert settings.credential is None
    assert settings.project is None
    assert settings.repository == "gitlab"
    assert settings.ci_config_path == ".gitlab-ci.yml"
    assert settings.dist_dir == Path("dist")
    assert not settings.in_ci
    assert settings.source_of("host") == "default"


def test_ci_variables_fill_everything() -> None:
    settings = resolve_settings({}, CI_ENV)
    assert settings.server_url == "https://gitlab.example.com"
    assert settings.api_url == "https://gitlab.example.com/api/v4"
    assert settings.project == "42"
    assert settings.project_path == "acme/tools/hello"
    assert settings.project_url == "https://gitlab.example.com/acme/tools/hello"
    assert settings.commit_tag == "v1.2.3"
    assert settings.commit_sha == CI_ENV["CI_COMMIT_SHA"]
    assert settings.default_branch == "main"
    assert settings.ci_config_path == "ci/release.yml"
    assert settings.identity_token == Secret("eyJ.id.token")
    assert settings.in_ci
    assert settings.credential is not None
    assert settings.credential.kind is TokenKind.JOB
    assert settings.credential.source == "CI_JOB_TOKEN"


@pytest.mark.parametrize(
    ("options", "env_extra", "pyproject", "expected", "source"),
    [
        (
            {"host": "https://cli.example"},
            {"GITLAB_HOST": "https://env.example"},
            {"host": "https://pp.example"},
            "https://cli.example",
            "--host",
        ),
        (
            {},
            {"GITLAB_HOST": "https://env.example"},
            {"host": "https://pp.example"},
            "https://env.example",
            "GITLAB_HOST",
        ),
        (
            {},
            {"GITLAB_RELEASE_HOST": "https://ours.example", "GITLAB_HOST": "https://glab.example"},
            {},
            "https://ours.example",
            "GITLAB_RELEASE_HOST",
        ),
        (
            {},
            {},
            {"host": "https://pp.example"},
            "https://pp.example",
            "`host` in [tool.poetry-gitlab-release] of pyproject.toml",
        ),
        ({}, {}, {}, "https://gitlab.example.com", "CI_SERVER_URL"),
    ],
)
def test_precedence_option_env_pyproject_ci(
    options: dict[str, object],
    env_extra: dict[str, str],
    pyproject: dict[str, object],
    expected: str,
    source: str,
) -> None:
    settings = resolve_settings(options, {**CI_ENV, **env_extra}, pyproject)
    assert settings.server_url == expected
    assert settings.source_of("host") == source


def test_ci_api_url_is_not_used_for_another_host() -> None:
    settings = resolve_settings({"host": "https://other.example"}, CI_ENV)
    assert settings.api_url == "https://other.example/api/v4"
    assert settings.graphql_url == "https://other.example/api/graphql"


def test_project_given_as_path_sets_path_and_url() -> None:
    settings = resolve_settings({"project": "/group/sub/proj/"}, CI_ENV)
    assert settings.project == "group/sub/proj"
    assert settings.project_path == "group/sub/proj"
    assert settings.project_url == "https://gitlab.example.com/group/sub/proj"


def test_another_numeric_project_forgets_ci_path() -> None:
    settings = resolve_settings({"project": "7"}, CI_ENV)
    assert settings.project == "7"
    assert settings.project_path is None
    assert settings.project_url is None


def test_token_option_beats_env_and_ci() -> None:
    settings = resolve_settings({"token": "glpat-cli"}, {**CI_ENV, "GITLAB_TOKEN": "glpat-env"})
    assert settings.credential is not None
    assert settings.credential.token.reveal() == "glpat-cli"
    assert settings.credential.kind is TokenKind.PERSONAL
    env_only = resolve_settings({}, {**CI_ENV, "GITLAB_TOKEN": "glpat-env"})
    assert env_only.credential is not None
    assert env_only.credential.source == "GITLAB_TOKEN"


def test_token_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("gldt-from-file\n")
    settings = resolve_settings({"token": f"@{secret}"}, {})
    assert settings.credential is not None
    assert settings.credential.token.reveal() == "gldt-from-file"
    assert settings.credential.kind is TokenKind.DEPLOY


def test_token_file_missing_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read --token"):
        resolve_settings({"token": f"@{tmp_path / 'absent'}"}, {})


@pytest.mark.parametrize(
    ("token", "kind_setting", "expected"),
    [
        ("glpat-x", None, TokenKind.PERSONAL),
        ("gldt-x", None, TokenKind.DEPLOY),
        ("glcbt-x", None, TokenKind.JOB),
        ("legacy-token", None, TokenKind.PERSONAL),
        ("legacy-token", "deploy", TokenKind.DEPLOY),
    ],
)
def test_token_kind_inference_and_override(
    token: str, kind_setting: str | None, expected: TokenKind
) -> None:
    env = {"GITLAB_TOKEN": token}
    if kind_setting:
        env["GITLAB_RELEASE_TOKEN_KIND"] = kind_setting
    settings = resolve_settings({}, env)
    assert settings.credential is not None
    assert settings.credential.kind is expected


def test_each_token_kind_is_presented_as_gitlab_expects() -> None:
    job = resolve_settings({}, {"CI_JOB_TOKEN": "j"}).credential
    assert job is not None
    assert job.basic_auth() == ("gitlab-ci-token", "j")
    assert job.rest_headers() == {"JOB-TOKEN": "j"}
    deploy = resolve_settings(
        {}, {"GITLAB_TOKEN": "gldt-d", "GITLAB_RELEASE_USERNAME": "deployer"}
    ).credential
    assert deploy is not None
    assert deploy.basic_auth() == ("deployer", "gldt-d")
    assert deploy.rest_headers() == {"DEPLOY-TOKEN": "gldt-d"}
    personal = resolve_settings({}, {"GITLAB_TOKEN": "glpat-p"}).credential
    assert personal is not None
    assert personal.rest_headers() == {"PRIVATE-TOKEN": "glpat-p"}
    assert personal.basic_auth()[1] == "glpat-p"


def test_secret_never_shows_itself() -> None:
    settings = resolve_settings({}, {"GITLAB_TOKEN": "glpat-very-secret"})
    assert "glpat-very-secret" not in repr(settings)
    assert "glpat-very-secret" not in str(settings.credential)
    assert "glpat-very-secret" not in f"{settings.credential}"


def test_settings_are_immutable() -> None:
    settings = resolve_settings({}, {})
    with pytest.raises(AttributeError):
        settings.server_url = "https://elsewhere"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "env", "pyproject", "message"),
    [
        (
            {"host": "ftp://gitlab.example"},
            {},
            {},
            r"invalid URL 'ftp://gitlab.example' from --host: the scheme",
        ),
        (
            {},
            {"GITLAB_HOST": "https://user:pw@gitlab.example"},
            {},
            r"from GITLAB_HOST: credentials do not belong",
        ),
        (
            {},
            {},
            {"host": "https://gitlab.example:99999"},
            r"`host` in \[tool.poetry-gitlab-release\].*port",
        ),
        ({}, {}, {"host": 5}, r"invalid value 5 from `host`.*expected a non-empty string"),
        (
            {},
            {},
            {"allow-insecure-http": "maybe"},
            r"invalid value 'maybe' from `allow-insecure-http`.*true or false",
        ),
        ({}, {}, {"repository": "gitlab_2"}, r"invalid repository name 'gitlab_2'"),
        (
            {},
            {},
            {"colour": "blue"},
            r"unknown key 'colour' in \[tool.poetry-gitlab-release\].*known keys",
        ),
        ({}, {}, {"token": "glpat-x"}, r"tokens never belong in pyproject.toml"),
        (
            {},
            {"GITLAB_RELEASE_TOKEN_KIND": "robot"},
            {},
            r"invalid token kind 'robot' from GITLAB_RELEASE_TOKEN_KIND",
        ),
        (
            {"ca-file": "/nonexistent/ca.pem"},
            {},
            {},
            r"'/nonexistent/ca.pem' from --ca-file: no such file",
        ),
        ({"host": "http://gitlab.example"}, {}, {}, r"refusing plain http:// .* from --host"),
    ],
)
def test_bad_input_names_key_source_and_expectation(
    options: dict[str, object], env: dict[str, str], pyproject: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        resolve_settings(options, env, pyproject)
    assert caught.value.exit_code == EXIT_USAGE
    assert "\n" not in str(caught.value)


def test_plain_http_allowed_for_loopback_and_on_request() -> None:
    assert (
        resolve_settings({"host": "http://127.0.0.1:8080"}, {}).server_url
        == "http://127.0.0.1:8080"
    )
    assert resolve_settings({"host": "http://localhost"}, {}).server_url == "http://localhost"
    allowed = resolve_settings({"host": "http://gitlab.lan", "allow-insecure-http": True}, {})
    assert allowed.server_url == "http://gitlab.lan"


def test_bare_host_name_becomes_https() -> None:
    assert (
        resolve_settings({}, {"GITLAB_HOST": "gitlab.example.com"}).server_url
        == "https://gitlab.example.com"
    )


def test_missing_required_values_say_where_to_set_them() -> None:
    settings = resolve_settings({}, {})
    with pytest.raises(
        ConfigError, match=r"missing project: pass --gitlab-project, set GITLAB_RELEASE_PROJECT"
    ):
        settings.require_project()
    with pytest.raises(
        ConfigError, match=r"no GitLab token for uploads: pass --token, set GITLAB_TOKEN"
    ):
        settings.require_credential("uploads")
    with pytest.raises(ConfigError, match=r"missing group"):
        settings.require_group()


def test_pyproject_table_extraction() -> None:
    document = {"tool": {"poetry-gitlab-release": {"repository": "internal"}, "poetry": {}}}
    assert pyproject_table(document) == {"repository": "internal"}
    assert pyproject_table({}) == {}
    with pytest.raises(ConfigError, match="must be a table"):
        pyproject_table({"tool": {"poetry-gitlab-release": "nope"}})
