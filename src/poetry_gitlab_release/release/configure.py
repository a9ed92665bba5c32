"""The `configure` step: make GitLab's PyPI registry a Poetry repository.

Writes, through Poetry's own configuration API:
  - `repositories.<name>.url` (the project's upload endpoint) in the project's `poetry.toml`,
  - `certificates.<name>.cert` there when a CA file is given, and `certificates.<name>.client-cert`
    when a TLS client certificate is (so that `poetry install` and `poetry publish` present it),
  - `virtualenvs.in-project = true` there (GitLab runners cache only paths in the project),
  - `http-basic.<name>` credentials for the token kind, where Poetry keeps them
    (the keyring when available, else Poetry's auth.toml).
Idempotent: values already in place are reported as unchanged and not rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.gitlab.urls import pypi_simple_url, pypi_upload_url

if TYPE_CHECKING:
    from poetry.config.config import Config

    from poetry_gitlab_release.config.settings import Settings


@dataclass(frozen=True)
class ConfigChange:
    key: str
    shown_value: str  # what may be printed: secrets masked
    location: str
    changed: bool


def configure_poetry(settings: Settings, config: Config, project_dir: Path) -> list[ConfigChange]:
    from poetry.config.config_source import PropertyNotFoundError
    from poetry.config.file_config_source import FileConfigSource
    from poetry.toml.file import TOMLFile
    from poetry.utils.password_manager import PasswordManager

    project = settings.require_project()
    credential = settings.require_credential("the PyPI registry")
    name = settings.repository
    local = FileConfigSource(TOMLFile(project_dir / "poetry.toml"))
    changes: list[ConfigChange] = []

    def set_local(key: list[str], value: Any, shown: str | None = None) -> None:
        try:
            changed = local.get_property(key) != value
        except PropertyNotFoundError:
            changed = True
        if changed:
            local.add_property(key, value)
        changes.append(ConfigChange(".".join(key), shown or str(value), "poetry.toml", changed))

    set_local(["virtualenvs", "in-project"], True, "true")
    set_local(["repositories", name, "url"], pypi_upload_url(settings.api_url, project))
    if settings.ca_file is not None:
        set_local(["certificates", name, "cert"], str(settings.ca_file.resolve()))
    if settings.client_cert is not None:
        set_local(["certificates", name, "client-cert"], str(settings.client_cert.resolve()))

    passwords = PasswordManager(config)
    auth_source = config.auth_config_source
    if isinstance(auth_source, FileConfigSource):
        auth_source.file.path.parent.mkdir(parents=True, exist_ok=True)
    username, password = credential.basic_auth()
    current = passwords.get_http_auth(name)
    changed = (current.username, current.password) != (username, password)
    if changed:
        passwords.set_http_password(name, username, password)
    where = "keyring" if passwords.use_keyring else "auth.toml"
    changes.append(ConfigChange(f"http-basic.{name}", f"{username}:********", where, changed))
    return changes


def source_hint(settings: Settings, pyproject: dict[str, Any]) -> str | None:
    """How to declare the registry as a source for `poetry install`, when it is not declared."""
    sources = pyproject.get("tool", {}).get("poetry", {}).get("source", [])
    if any(
        isinstance(source, dict) and source.get("name") == settings.repository for source in sources
    ):
        return None
    url = pypi_simple_url(settings.api_url, project=settings.require_project())
    return (
        f"To install from this registry, declare it in pyproject.toml:\n"
        f'[[tool.poetry.source]]\nname = "{settings.repository}"\nurl = "{url}"\npriority = "supplemental"'
    )
