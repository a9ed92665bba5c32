"""Poetry's own sources of our settings: the project's pyproject.toml, Poetry's
certificates.<repository>.cert / .client-cert and its http-basic credentials.

Each function takes plain values (a directory, a repository name, a Poetry Config), so it is
testable without cleo; the commands call them through `cli/base.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.config.settings import (
    Credential,
    Secret,
    Settings,
    TokenKind,
    with_poetry_certificate,
    with_poetry_client_certificate,
)
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
