"""Poetry's own sources of our settings: the project's pyproject.toml, Poetry's
certificates.<repository>.cert / .client-cert and its http-basic credentials.

Each function takes plain values (a directory, a repository name, a Poetry Config), so it is
testable without cleo; the commands call them through `cli/base.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.config.credentials import Credential, Secret, TokenKind
from poetry_gitlab_release.config.settings import Settings
from poetry_gitlab_release.config.values import as_client_cert, as_existing_file
from poetry_gitlab_release.errors import ConfigError

if TYPE_CHECKING:
    from poetry.config.config import Config


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def pyproject_document(start: Path) -> tuple[Mapping[str, Any], str]:
    """The parsed pyproject.toml found from `start` upwards, and its name for messages."""
    path = find_pyproject(start)
    if path is None:
        return {}, "pyproject.toml"
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle), str(path)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def with_poetry_certificate(
    settings: Settings, cert: Path | str | None, *, verify: bool, where: str
) -> Settings:
    """Use Poetry's `certificates.<repository>.cert` when no CA file came from our own sources.

    A false `verify` (Poetry's `cert = false`) asks to turn verification off; we refuse rather
    than obey, unless a CA file from a higher source makes Poetry's setting irrelevant.
    """
    if settings.source_of("ca-file") != "default":
        return settings
    if isinstance(cert, str | Path) and str(cert).strip().lower() in {"false", "0", "no", "off"}:
        verify = False  # POETRY_CERTIFICATES_<NAME>_CERT=false arrives as a string
    if not verify:
        raise ConfigError(
            f"{where} is false, which would turn TLS verification off; poetry-gitlab-release "
            "never does that: set it to your GitLab's CA bundle (PEM), pass --ca-file, or set "
            "GITLAB_RELEASE_CA_FILE or SSL_CERT_FILE"
        )
    if cert is None or not str(cert).strip():
        return settings
    path = as_existing_file(str(cert), where)
    return replace(settings, ca_file=path, sources={**settings.sources, "ca-file": where})


def with_poetry_client_certificate(
    settings: Settings, client_cert: Path | str | None, *, where: str
) -> Settings:
    """Use Poetry's `certificates.<repository>.client-cert` when none came from our sources."""
    if settings.source_of("client-cert") != "default":
        return settings
    if client_cert is None or not str(client_cert).strip():
        return settings
    path = as_client_cert(str(client_cert), where)
    return replace(settings, client_cert=path, sources={**settings.sources, "client-cert": where})


def with_poetry_certificates(settings: Settings, config: Config) -> Settings:
    """Poetry's certificates.<repository>.cert and .client-cert (config.toml, poetry.toml
    or POETRY_CERTIFICATES_<NAME>_CERT / _CLIENT_CERT), each below our own sources."""
    from poetry.utils.authenticator import RepositoryCertificateConfig

    repository = settings.repository
    certs = RepositoryCertificateConfig.create(repository, config)
    raw = config.get(["certificates", repository, "cert"])
    settings = with_poetry_certificate(
        settings,
        raw if isinstance(raw, str) else certs.cert,
        verify=certs.verify,
        where=f"Poetry's certificates.{repository}.cert",
    )
    return with_poetry_client_certificate(
        settings,
        certs.client_cert,
        where=f"Poetry's certificates.{repository}.client-cert",
    )


def poetry_credential(repository: str) -> Credential | None:
    """The http-basic password Poetry stores for `repository` (auth.toml, env or keyring)."""
    try:
        from poetry.config.config import Config
        from poetry.utils.password_manager import PasswordManager

        auth = PasswordManager(Config.create()).get_http_auth(repository)
    except Exception:  # noqa: BLE001 - a broken keyring must not break the dashboard
        return None
    if not auth.password:
        return None
    password = auth.password
    username = auth.username or ""
    kind = TokenKind.PERSONAL
    if username == "gitlab-ci-token" or password.startswith("glcbt-"):
        kind = TokenKind.JOB
    elif password.startswith("gldt-"):
        kind = TokenKind.DEPLOY
    return Credential(Secret(password), kind, f"Poetry's http-basic.{repository}")
