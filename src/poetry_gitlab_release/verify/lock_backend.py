"""The real `LockBackend`: GitLab (projects, simple index, generic registry) through one
`GitLabClient`, and PyPI's Integrity API through its own `IndexConnection` that carries no
credential; both shared by the worker threads (httpx's clients are thread-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import OperationalError
from poetry_gitlab_release.verify.expected import Requirement
from poetry_gitlab_release.verify.registry import (
    ProjectFacts,
    fetch_registry_material,
    owning_project,
    project_facts,
)

if TYPE_CHECKING:
    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.simple_index import IndexFile
    from poetry_gitlab_release.pypi.index import IndexConnection
    from poetry_gitlab_release.signing.material import SignatureMaterial


class RegistryBackend:
    def __init__(
        self,
        client: GitLabClient,
        index_connection: IndexConnection,
        settings: Settings,
        *,
        online_log: bool,
    ) -> None:
        self.client = client
        self.index_connection = index_connection
        self.settings = settings
        self.online_log = online_log

    def project(self, ref: str) -> ProjectFacts:
        facts = project_facts(self.client, ref)
        if facts is None:
            raise OperationalError(
                f"cannot read GitLab project {ref}: its path and ids are needed to know who "
                "must have signed",
                hint="use a token with read_api that can see the project",
            )
        return facts

    def owning_project(self, group: str, name: str, version: str) -> str:
        project, _ = owning_project(self.client, group, Requirement(name, version))
        return project

    def index(self, simple_url: str, name: str) -> list[IndexFile]:
        from poetry_gitlab_release.gitlab.simple_index import fetch_project_page

        return fetch_project_page(self.client, simple_url, name)

    def material(
        self, project: str, name: str, version: str, filename: str
    ) -> SignatureMaterial | None:
        return fetch_registry_material(
            self.client,
            self.settings,
            project,
            name,
            version,
            filename,
            online_log=self.online_log,
        )

    def provenance(self, name: str, version: str, filename: str) -> dict[str, Any] | None:
        """The file's provenance object, or None when the index has none (404)."""
        from poetry_gitlab_release.pypi.integrity import fetch_provenance

        return fetch_provenance(self.index_connection, name, version, filename)
