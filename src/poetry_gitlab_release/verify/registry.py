"""What GitLab says about a release: where its files and signatures live, which project of
a group publishes it, the project's immutable ids, and a file's signature material."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ConfigError
from poetry_gitlab_release.gitlab.simple_index import normalize_name
from poetry_gitlab_release.signing.material import MaterialKind, SignatureMaterial

if TYPE_CHECKING:
    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.verify.expected import Requirement


@dataclass(frozen=True)
class RegistryTarget:
    """Where the files and their signatures live."""

    simple_url: str
    signature_project: str  # id or path of the project whose generic registry holds signatures
    project_path: str | None
    project_id: str | None = None  # GitLab's immutable ids for that project, asked once
    namespace_id: str | None = None


def resolve_target(
    client: GitLabClient, settings: Settings, requirement: Requirement, *, group_index: bool
) -> RegistryTarget:
    """Project mode: the project's index and registry. Group mode: the group's index, and the
    project given with --gitlab-project, else the one project of the group holding the package."""
    from poetry_gitlab_release.gitlab.urls import pypi_simple_url

    if group_index:
        group = settings.require_group()
        simple_url = pypi_simple_url(settings.api_url, group=group)
        if settings.project is not None and settings.source_of("project") == "--gitlab-project":
            project: str = settings.project
            path = settings.project_path
        else:
            project, path = owning_project(client, group, requirement)
    else:
        project = settings.require_project()
        path = settings.project_path
        simple_url = pypi_simple_url(settings.api_url, project=project)
    facts = project_facts(client, project)
    if facts is None:
        return RegistryTarget(
            simple_url=simple_url,
            signature_project=project,
            project_path=path,
            project_id=project if project.isdigit() else None,
        )
    return RegistryTarget(
        simple_url=simple_url,
        signature_project=project,
        project_path=path or facts.path,
        project_id=facts.id,
        namespace_id=facts.namespace_id,
    )


def owning_project(
    client: GitLabClient, group: str, requirement: Requirement
) -> tuple[str, str | None]:
    """The one project of `group` that holds the package (the group index does not say).

    `GET /groups/:id/packages` where GitLab has it; else each project of the group (with
    subgroups) is asked through `GET /projects/:id/packages`.
    """
    from poetry_gitlab_release.errors import NotFoundError
    from poetry_gitlab_release.gitlab.simple_index import name_search_term
    from poetry_gitlab_release.gitlab.urls import encode_id

    # Any stored spelling of the name (GitLab keeps `My_Tool` as uploaded); _is_release then
    # compares PEP 503 names.
    params: dict[str, Any] = {
        "package_type": "pypi",
        "package_name": name_search_term(requirement.name),
    }
    owners: dict[str, str | None] = {}
    try:
        for package in client.paginate(f"groups/{encode_id(group)}/packages", params):
            if _is_release(package, requirement) and package.get("project_id") is not None:
                owners[str(package["project_id"])] = package.get("project_path")
    except NotFoundError:
        projects = client.paginate(
            f"groups/{encode_id(group)}/projects",
            {"include_subgroups": "true", "with_shared": "false", "simple": "true"},
        )
        for project in projects:
            if not isinstance(project, dict) or project.get("id") is None:
                continue
            packages = client.paginate(f"projects/{project['id']}/packages", params)
            if any(_is_release(package, requirement) for package in packages):
                owners[str(project["id"])] = project.get("path_with_namespace")
    if not owners:
        raise ConfigError(
            f"cannot find which project of group {group} publishes {requirement}",
            hint="pass --gitlab-project ID|PATH to say where its signatures live",
        )
    if len(owners) > 1:
        raise ConfigError(
            f"several projects of group {group} publish {requirement}: {', '.join(sorted(owners))}",
            hint="pass --gitlab-project to choose one",
        )
    project_id, path = next(iter(owners.items()))
    return project_id, path


def _is_release(package: object, requirement: Requirement) -> bool:
    if not isinstance(package, dict):
        return False
    if normalize_name(str(package.get("name", ""))) != normalize_name(requirement.name):
        return False
    return requirement.version is None or str(package.get("version")) == requirement.version


@dataclass(frozen=True)
class ProjectFacts:
    """A GitLab project as GitLab describes it now (GET /projects/:id)."""

    id: str
    path: str
    namespace_id: str | None


def project_facts(client: GitLabClient, project: str) -> ProjectFacts | None:
    """The project's immutable id, its namespace's id and its current path, from GitLab.

    GET /projects/:id (doc/api/projects.md) answers `id`, `path_with_namespace` and
    `namespace.id`. None when the token may not read the project (a job or deploy token).
    """
    from poetry_gitlab_release.errors import ApiError
    from poetry_gitlab_release.gitlab.urls import encode_id

    try:
        body = client.get_json(f"projects/{encode_id(project)}")
    except ApiError:
        return None  # a job or deploy token may not read the project; the caller explains
    if not isinstance(body, dict):
        return None
    project_id, path = body.get("id"), body.get("path_with_namespace")
    namespace = body.get("namespace")
    namespace_id = namespace.get("id") if isinstance(namespace, dict) else None
    if not isinstance(project_id, int) or not isinstance(path, str) or not path:
        return None
    return ProjectFacts(
        id=str(project_id),
        path=path,
        namespace_id=str(namespace_id) if isinstance(namespace_id, int) else None,
    )


def fetch_registry_material(
    client: GitLabClient,
    settings: Settings,
    project: str,
    package: str,
    version: str,
    file_name: str,
    *,
    online_log: bool,
) -> SignatureMaterial | None:
    """`.sigstore.json`, else `.publish.attestation`, else `.sig`+`.crt` (online log only)."""
    from poetry_gitlab_release.gitlab.downloads import fetch_small_file
    from poetry_gitlab_release.gitlab.urls import generic_file_url

    def get(suffix: str) -> bytes | None:
        url = generic_file_url(settings.api_url, project, package, version, file_name + suffix)
        return fetch_small_file(client, url, f"{file_name}{suffix}")

    for kind in (MaterialKind.BUNDLE, MaterialKind.ATTESTATION):
        content = get(kind.value)
        if content is not None:
            return SignatureMaterial(kind, content, f"{file_name}{kind.value}")
    if online_log:
        signature = get(".sig")
        certificate = get(".crt") if signature is not None else None
        if signature is not None and certificate is not None:
            return SignatureMaterial(
                MaterialKind.DETACHED, signature, f"{file_name}.sig", certificate=certificate
            )
    return None
