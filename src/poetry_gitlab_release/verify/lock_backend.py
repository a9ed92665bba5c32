"""The real `LockBackend`: GitLab (projects, simple index, generic registry) and PyPI's Integrity
API, through one `GitLabClient` shared by the worker threads (httpx's client is thread-safe; the
GitLab token is only ever sent to GitLab's own origin, never to PyPI)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ApiError, NotFoundError, OperationalError
from poetry_gitlab_release.verify.flow import (
    ProjectFacts,
    Requirement,
    fetch_registry_material,
    project_facts,
)

if TYPE_CHECKING:
    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.simple_index import IndexFile
    from poetry_gitlab_release.signing.material import SignatureMaterial

MAX_PROVENANCE_BYTES = 4 << 20


class RegistryBackend:
    def __init__(
        self, client: GitLabClient, settings: Settings, *, pypi_url: str, online_log: bool
    ) -> None:
        self.client = client
        self.settings = settings
        self.pypi_url = pypi_url.rstrip("/")
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
        from poetry_gitlab_release.verify.flow import owning_project

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

    def provenance(self, name: str, version: str, filename: str) -> Any | None:
        """The file's provenance object, or None when the index has none (404)."""
        from poetry_gitlab_release.gitlab.client import Auth
        from poetry_gitlab_release.verify.provenance import INTEGRITY_JSON, provenance_url

        url = provenance_url(self.pypi_url, name, version, filename)
        try:
            response = self.client.request(
                "GET",
                url,
                auth=Auth.NONE,
                headers={"Accept": INTEGRITY_JSON},
                expected=(200,),
                max_bytes=MAX_PROVENANCE_BYTES,
            )
        except NotFoundError:
            return None
        try:
            return json.loads(response.content)
        except ValueError:
            raise ApiError(
                f"GET {url}: the provenance is not JSON", status=response.status_code
            ) from None
