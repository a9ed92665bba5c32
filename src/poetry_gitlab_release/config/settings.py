"""The one place where settings are resolved and validated.

Precedence, highest first:
  command-line option > environment variable > [tool.poetry-gitlab-release] in pyproject.toml
  > GitLab CI predefined variables > defaults.

The CA bundle has one more source below ours: Poetry's `certificates.<repository>.cert`
(`config/poetry_sources.with_poetry_certificate`), and below that SSL_CERT_FILE / SSL_CERT_DIR / certifi, which the
HTTP client's default context reads. TLS verification is never turned off. The TLS client
certificate likewise falls back to Poetry's `certificates.<repository>.client-cert`
(`config/poetry_sources.with_poetry_client_certificate`).

`resolve_settings()` takes plain mappings (options given on the command line, the environment,
the pyproject table) and returns one immutable, validated `Settings`. Nothing below the commands
reads the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poetry_gitlab_release.config.credentials import Credential, Secret, TokenKind, infer_token_kind
from poetry_gitlab_release.config.values import (
    as_bool,
    as_client_cert,
    as_existing_file,
    as_path,
    as_repository_name,
    as_str,
    as_url,
    check_transport,
    read_file_reference,
)
from poetry_gitlab_release.errors import ConfigError

PYPROJECT_TABLE = "tool.poetry-gitlab-release"
DEFAULT_HOST = "https://gitlab.com"
DEFAULT_REPOSITORY = "gitlab"
DEFAULT_CI_CONFIG_PATH = ".gitlab-ci.yml"


@dataclass(frozen=True)
class Settings:
    server_url: str
    api_url: str
    graphql_url: str
    credential: Credential | None
    project: str | None
    project_path: str | None
    project_url: str | None
    group: str | None
    repository: str
    ca_file: Path | None
    client_cert: Path | None
    allow_insecure_http: bool
    dist_dir: Path
    ci_config_path: str
    commit_tag: str | None
    ref_name: str | None
    commit_sha: str | None
    default_branch: str | None
    identity_token: Secret | None
    trust_config: Path | None
    identity: str | None
    issuer: str | None
    in_ci: bool
    sources: Mapping[str, str] = field(default_factory=dict)
    # GitLab Release page (#16)
    release_page: bool = True
    job_url: str | None = None
    # PyPI target (#13): where else the release goes, and the index's credentials.
    targets: tuple[str, ...] = ("gitlab",)
    pypi_url: str = "https://upload.pypi.org/legacy/"
    pypi_id_token: Secret | None = None
    pypi_api_token: Secret | None = None

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")

    def require_project(self) -> str:
        if self.project is None:
            raise _missing("project", "--gitlab-project", "GITLAB_RELEASE_PROJECT", "CI_PROJECT_ID")
        return self.project

    def require_group(self) -> str:
        if self.group is None:
            raise _missing("group", "--group", "GITLAB_RELEASE_GROUP", None)
        return self.group

    def require_credential(self, purpose: str) -> Credential:
        if self.credential is None:
            raise ConfigError(
                f"no GitLab token for {purpose}: pass --token, set GITLAB_TOKEN, "
                "or run in GitLab CI where CI_JOB_TOKEN is set"
            )
        return self.credential


def _missing(key: str, option: str, env: str, ci: str | None) -> ConfigError:
    where = f"pass {option}, set {env}, or add `{key}` to [{PYPROJECT_TABLE}]"
    if ci is not None:
        where += f"; in GitLab CI it comes from {ci}"
    return ConfigError(f"missing {key}: {where}")


# --- the specification of every key ------------------------------------------------------------

Parser = Callable[[object, str], Any]


@dataclass(frozen=True)
class _Spec:
    key: str
    parse: Parser
    env: tuple[str, ...] = ()
    in_pyproject: bool = True
    ci: tuple[str, ...] = ()
    default: object = None
    expected: str = "a string"


def _as_token_kind(value: object, where: str) -> TokenKind:
    text = as_str(value, where).lower()
    try:
        return TokenKind(text)
    except ValueError:
        choices = ", ".join(kind.value for kind in TokenKind)
        raise ConfigError(
            f"invalid token kind {text!r} from {where}: expected one of {choices}"
        ) from None


TARGETS = ("gitlab", "pypi")


def _as_targets(value: object, where: str) -> tuple[str, ...]:
    """`gitlab,pypi` (or a TOML list) -> ("gitlab", "pypi"), in publishing order."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"invalid value {value!r} from {where}: expected e.g. gitlab,pypi")
    wanted = {item.strip().lower() for item in items if item.strip()}
    unknown = sorted(wanted - set(TARGETS))
    if unknown or not wanted:
        raise ConfigError(
            f"invalid target {unknown[0] if unknown else ''!r} from {where}: "
            f"expected one or more of {', '.join(TARGETS)}"
        )
    return tuple(target for target in TARGETS if target in wanted)


def _as_pypi_url(value: object, where: str) -> str:
    text = as_str(value, where)
    from poetry_gitlab_release.pypi.index import ALIASES

    return ALIASES.get(text.lower()) or as_url(text, where) + "/"


_SPECS: tuple[_Spec, ...] = (
    _Spec(
        "host",
        as_url,
        ("GITLAB_RELEASE_HOST", "GITLAB_HOST"),
        ci=("CI_SERVER_URL",),
        default=DEFAULT_HOST,
        expected="a URL",
    ),
    _Spec("api-url", as_url, ("GITLAB_RELEASE_API_URL",), ci=("CI_API_V4_URL",)),
    _Spec("graphql-url", as_url, ("GITLAB_RELEASE_GRAPHQL_URL",), ci=("CI_API_GRAPHQL_URL",)),
    _Spec(
        "token",
        as_str,
        ("GITLAB_RELEASE_TOKEN", "GITLAB_TOKEN"),
        in_pyproject=False,
        ci=("CI_JOB_TOKEN",),
    ),
    _Spec("token-kind", _as_token_kind, ("GITLAB_RELEASE_TOKEN_KIND",)),
    _Spec("username", as_str, ("GITLAB_RELEASE_USERNAME",)),
    _Spec("project", as_str, ("GITLAB_RELEASE_PROJECT",), ci=("CI_PROJECT_ID",)),
    _Spec("project-path", as_str, (), in_pyproject=False, ci=("CI_PROJECT_PATH",)),
    _Spec("project-url", as_url, (), in_pyproject=False, ci=("CI_PROJECT_URL",)),
    _Spec("group", as_str, ("GITLAB_RELEASE_GROUP",)),
    _Spec(
        "repository",
        as_repository_name,
        ("GITLAB_RELEASE_REPOSITORY",),
        default=DEFAULT_REPOSITORY,
    ),
    _Spec("ca-file", as_existing_file, ("GITLAB_RELEASE_CA_FILE",)),
    _Spec("client-cert", as_client_cert, ("GITLAB_RELEASE_CLIENT_CERT",)),
    _Spec("allow-insecure-http", as_bool, ("GITLAB_RELEASE_ALLOW_INSECURE_HTTP",), default=False),
    _Spec("dist-dir", as_path, ("GITLAB_RELEASE_DIST_DIR",), default=Path("dist")),
    _Spec(
        "ci-config",
        as_str,
        ("GITLAB_RELEASE_CI_CONFIG",),
        ci=("CI_CONFIG_PATH",),
        default=DEFAULT_CI_CONFIG_PATH,
    ),
    _Spec("commit-tag", as_str, (), in_pyproject=False, ci=("CI_COMMIT_TAG",)),
    _Spec("ref-name", as_str, (), in_pyproject=False, ci=("CI_COMMIT_REF_NAME",)),
    _Spec("commit-sha", as_str, (), in_pyproject=False, ci=("CI_COMMIT_SHA",)),
    _Spec("default-branch", as_str, (), in_pyproject=False, ci=("CI_DEFAULT_BRANCH",)),
    _Spec("identity-token", as_str, (), in_pyproject=False, ci=("SIGSTORE_ID_TOKEN",)),
    _Spec("trust-config", as_existing_file, ("GITLAB_RELEASE_TRUST_CONFIG",)),
    _Spec("identity", as_str, ("GITLAB_RELEASE_IDENTITY",)),
    _Spec("issuer", as_url, ("GITLAB_RELEASE_ISSUER",)),
    # GitLab Release page (#16)
    _Spec("release-page", as_bool, ("GITLAB_RELEASE_RELEASE_PAGE",), default=True),
    _Spec("job-url", as_url, (), in_pyproject=False, ci=("CI_JOB_URL",)),
    # PyPI target (#13)
    _Spec("to", _as_targets, ("GITLAB_RELEASE_TO",), default="gitlab", expected="targets"),
    _Spec(
        "pypi-url",
        _as_pypi_url,
        ("GITLAB_RELEASE_PYPI_URL",),
        default="https://upload.pypi.org/legacy/",
        expected="a URL",
    ),
    _Spec("pypi-id-token", as_str, (), in_pyproject=False, ci=("PYPI_ID_TOKEN",)),
    _Spec("pypi-api-token", as_str, ("PYPI_API_TOKEN",), in_pyproject=False),
)
SPECS: Mapping[str, _Spec] = {spec.key: spec for spec in _SPECS}
PYPROJECT_KEYS = tuple(spec.key for spec in _SPECS if spec.in_pyproject)


@dataclass(frozen=True)
class _Resolved:
    value: Any
    source: str


def _pick(
    spec: _Spec,
    options: Mapping[str, object],
    env: Mapping[str, str],
    pyproject: Mapping[str, object],
    pyproject_name: str,
) -> _Resolved | None:
    if options.get(spec.key) is not None:
        where = f"--{spec.key}"
        raw = options[spec.key]
        if spec.key in {"token", "identity-token"} and isinstance(raw, str):
            raw = read_file_reference(raw, where)
        return _Resolved(spec.parse(raw, where), where)
    for name in spec.env:
        if env.get(name):
            return _Resolved(spec.parse(env[name], name), name)
    if spec.in_pyproject and spec.key in pyproject:
        where = f"`{spec.key}` in [{PYPROJECT_TABLE}] of {pyproject_name}"
        return _Resolved(spec.parse(pyproject[spec.key], where), where)
    for name in spec.ci:
        if env.get(name):
            return _Resolved(spec.parse(env[name], name), name)
    if spec.default is not None:
        return _Resolved(spec.default, "default")
    return None


def _check_pyproject(pyproject: Mapping[str, object], pyproject_name: str) -> None:
    for key in pyproject:
        spec = SPECS.get(key)
        if spec is None or not spec.in_pyproject:
            hint = (
                "tokens never belong in pyproject.toml; use GITLAB_TOKEN or --token"
                if key == "token"
                else f"known keys: {', '.join(PYPROJECT_KEYS)}"
            )
            raise ConfigError(
                f"unknown key {key!r} in [{PYPROJECT_TABLE}] of {pyproject_name} ({hint})"
            )


def resolve_settings(
    options: Mapping[str, object],
    env: Mapping[str, str],
    pyproject: Mapping[str, object] | None = None,
    pyproject_name: str = "pyproject.toml",
) -> Settings:
    """Resolve every setting from its sources. `options` holds only options the user gave."""
    table = dict(pyproject or {})
    _check_pyproject(table, pyproject_name)
    unknown = set(options) - set(SPECS)
    if unknown:
        raise AssertionError(f"commands passed unknown settings: {sorted(unknown)}")
    resolved: dict[str, _Resolved] = {}
    for spec in _SPECS:
        picked = _pick(spec, options, env, table, pyproject_name)
        if picked is not None:
            resolved[spec.key] = picked

    def value(key: str) -> Any:
        item = resolved.get(key)
        return None if item is None else item.value

    host: str = value("host")
    host_source = resolved["host"].source
    # CI's API URLs describe CI's server: use them only when the host came from CI as well.
    api_url = _derived_url(resolved.get("api-url"), host_source, host + "/api/v4")
    graphql_url = _derived_url(resolved.get("graphql-url"), host_source, host + "/api/graphql")
    allow_http: bool = value("allow-insecure-http")
    for key, url in (("host", host), ("api-url", api_url), ("graphql-url", graphql_url)):
        check_transport(url, resolved[key].source if key in resolved else key, allow_http)

    credential = None
    if "token" in resolved:
        token_source = resolved["token"].source
        token: str = value("token")
        kind = value("token-kind") or infer_token_kind(token, token_source)
        credential = Credential(Secret(token), kind, token_source, value("username"))

    project: str | None = value("project")
    project_path: str | None = value("project-path")
    project_source = resolved["project"].source if "project" in resolved else None
    is_ci_project = project_source in {None, "CI_PROJECT_ID"}
    if project is not None and not project.isdigit():
        project = project.strip("/")
        project_path = project
    elif not is_ci_project:
        project_path = None  # another project than CI's: its path is not known here
    if project is None:
        project = project_path
    project_url: str | None = value("project-url") if is_ci_project else None
    if project_url is None and project_path is not None:
        project_url = f"{host}/{project_path}"

    identity_token = value("identity-token")
    pypi_id_token, pypi_api_token = value("pypi-id-token"), value("pypi-api-token")
    if "pypi-url" in resolved:
        check_transport(value("pypi-url"), resolved["pypi-url"].source, allow_http)
    return Settings(
        server_url=host,
        api_url=api_url,
        graphql_url=graphql_url,
        credential=credential,
        project=project,
        project_path=project_path,
        project_url=project_url,
        group=value("group"),
        repository=value("repository"),
        ca_file=value("ca-file"),
        client_cert=value("client-cert"),
        allow_insecure_http=allow_http,
        dist_dir=value("dist-dir"),
        ci_config_path=value("ci-config"),
        commit_tag=value("commit-tag"),
        ref_name=value("ref-name"),
        commit_sha=value("commit-sha"),
        default_branch=value("default-branch"),
        identity_token=None if identity_token is None else Secret(identity_token),
        trust_config=value("trust-config"),
        identity=value("identity"),
        issuer=value("issuer"),
        in_ci=env.get("GITLAB_CI") == "true",
        sources={key: item.source for key, item in resolved.items()},
        # GitLab Release page (#16)
        release_page=value("release-page"),
        job_url=value("job-url"),
        targets=value("to") if isinstance(value("to"), tuple) else ("gitlab",),  # default: a str
        pypi_url=value("pypi-url"),
        pypi_id_token=None if pypi_id_token is None else Secret(pypi_id_token),
        pypi_api_token=None if pypi_api_token is None else Secret(pypi_api_token),
    )


def _derived_url(item: _Resolved | None, host_source: str, fallback: str) -> str:
    if item is None:
        return fallback
    if item.source.startswith("CI_") and host_source != "CI_SERVER_URL":
        return fallback
    value: str = item.value
    return value


def pyproject_table(document: Mapping[str, Any]) -> dict[str, object]:
    """The [tool.poetry-gitlab-release] table of a parsed pyproject.toml (empty when absent)."""
    tool = document.get("tool", {})
    table = tool.get("poetry-gitlab-release", {}) if isinstance(tool, Mapping) else {}
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{PYPROJECT_TABLE}] must be a table")
    return dict(table)
