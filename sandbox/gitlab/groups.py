"""Groups and projects REST: ``/groups/:id``, ``/groups/:id/projects``, ``/projects/:id``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sandbox.gitlab.auth import can_see_project, require_scope
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.models import Group, Project, iso
from sandbox.gitlab.pagination import paginate

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

PROJECT_ORDER: dict[str, Callable[[Project], object]] = {
    "id": lambda p: p.id,
    "name": lambda p: p.name.lower(),
    "path": lambda p: p.path_with_namespace.lower(),
    "created_at": lambda p: p.created_at,
    "updated_at": lambda p: p.last_activity_at,
    "last_activity_at": lambda p: p.last_activity_at,
    "similarity": lambda p: p.id,
    "star_count": lambda p: 0,
}


def register(app: App) -> None:
    app.router.add("GET", "/api/v4/groups/{id}", "api", lambda r: get_group(app, r))
    app.router.add("GET", "/api/v4/groups/{id}/projects", "api", lambda r: group_projects(app, r))
    app.router.add("GET", "/api/v4/projects/{id}", "api", lambda r: get_project(app, r))


def namespace_json(app: App, group: Group) -> dict[str, object]:
    return {
        "id": group.id,
        "name": group.name,
        "path": group.path,
        "kind": "group",
        "full_path": group.full_path,
        "parent_id": group.parent_id,
        "avatar_url": None,
        "web_url": f"{app.url}/groups/{group.full_path}",
    }


def group_json(app: App, group: Group) -> dict[str, object]:
    names = [g.name for g in reversed(app.scenario.ancestors(group))]
    return {
        "id": group.id,
        "web_url": f"{app.url}/groups/{group.full_path}",
        "name": group.name,
        "path": group.path,
        "description": group.description,
        "visibility": group.visibility,
        "share_with_group_lock": False,
        "require_two_factor_authentication": False,
        "two_factor_grace_period": 48,
        "project_creation_level": "developer",
        "auto_devops_enabled": None,
        "subgroup_creation_level": "maintainer",
        "emails_disabled": False,
        "emails_enabled": True,
        "mentions_disabled": None,
        "lfs_enabled": True,
        "default_branch": None,
        "default_branch_protection": 2,
        "avatar_url": None,
        "request_access_enabled": True,
        "full_name": " / ".join(names),
        "full_path": group.full_path,
        "created_at": iso(group.created_at),
        "parent_id": group.parent_id,
        "organization_id": 1,
        "shared_runners_setting": "enabled",
        "ldap_cn": None,
        "ldap_access": None,
        "wiki_access_level": "enabled",
        "marked_for_deletion_on": None,
    }


def project_json(app: App, project: Project, *, simple: bool) -> dict[str, object]:
    namespace = app.scenario.namespace_of(project)
    full_name = " / ".join(g.name for g in reversed(app.scenario.ancestors(namespace)))
    web_url = f"{app.url}/{project.path_with_namespace}"
    data: dict[str, object] = {
        "id": project.id,
        "description": project.description,
        "name": project.name,
        "name_with_namespace": f"{full_name} / {project.name}",
        "path": project.path,
        "path_with_namespace": project.path_with_namespace,
        "created_at": iso(project.created_at),
        "default_branch": project.default_branch,
        "tag_list": list(project.topics),
        "topics": list(project.topics),
        "ssh_url_to_repo": f"ssh://git@127.0.0.1/{project.path_with_namespace}.git",
        "http_url_to_repo": f"{web_url}.git",
        "web_url": web_url,
        "readme_url": f"{web_url}/-/blob/{project.default_branch}/README.md",
        "forks_count": 0,
        "avatar_url": None,
        "star_count": 0,
        "last_activity_at": iso(project.last_activity_at),
        "namespace": namespace_json(app, namespace),
    }
    if simple:
        return data
    data.update(
        {
            "archived": project.archived,
            "visibility": project.visibility,
            "container_registry_image_prefix": f"127.0.0.1/{project.path_with_namespace}",
            "_links": {
                "self": f"{app.url}/api/v4/projects/{project.id}",
                "issues": f"{app.url}/api/v4/projects/{project.id}/issues",
                "merge_requests": f"{app.url}/api/v4/projects/{project.id}/merge_requests",
                "repo_branches": f"{app.url}/api/v4/projects/{project.id}/repository/branches",
            },
            "packages_enabled": True,
            "empty_repo": False,
            "open_issues_count": 0,
            "ci_config_path": None,
            "shared_with_groups": [
                {
                    "group_id": gid,
                    "group_name": app.scenario.groups[gid].name,
                    "group_full_path": app.scenario.groups[gid].full_path,
                    "group_access_level": 30,
                    "expires_at": None,
                }
                for gid in project.shared_with_group_ids
            ],
        }
    )
    return data


def get_group(app: App, request: Request) -> Response:
    assert request.principal is not None
    require_scope(request.principal, write=False)
    group = app.group_for(request, request.path_params["id"])
    data = group_json(app, group)
    if request.bool_param("with_projects", True):
        direct = app.scenario.group_projects(group, include_subgroups=False, with_shared=False)
        visible = [p for p in direct if can_see_project(request.principal, p)][:100]
        data["projects"] = [project_json(app, p, simple=False) for p in visible]
        shared = [
            p
            for p in app.scenario.projects.values()
            if group.id in p.shared_with_group_ids and can_see_project(request.principal, p)
        ]
        data["shared_projects"] = [project_json(app, p, simple=False) for p in shared[:100]]
    return Response.json(200, data)


def group_projects(app: App, request: Request) -> Response:
    assert request.principal is not None
    require_scope(request.principal, write=False)
    group = app.group_for(request, request.path_params["id"])
    # lib/api/groups.rb: `check_rate_limit_by_user_or_ip!(:group_projects_api)` (600/min).
    app.check_application_limit("group_projects_api", request)
    projects = app.scenario.group_projects(
        group,
        include_subgroups=request.bool_param("include_subgroups", False),
        with_shared=request.bool_param("with_shared", True),
    )
    projects = [p for p in projects if can_see_project(request.principal, p)]
    if request.param("archived") not in (None, ""):
        archived = request.bool_param("archived", False)
        projects = [p for p in projects if p.archived == archived]
    visibility = request.param("visibility")
    if visibility:
        if visibility not in ("public", "internal", "private"):
            raise ApiError.grape("visibility does not have a valid value")
        projects = [p for p in projects if p.visibility == visibility]
    search = (request.param("search") or "").lower()
    if search:
        projects = [p for p in projects if search in p.name.lower() or search in p.path.lower()]
    order_by = request.param("order_by") or "created_at"
    if order_by not in PROJECT_ORDER:
        raise ApiError.grape("order_by does not have a valid value")
    sort = request.param("sort") or "desc"
    if sort not in ("asc", "desc"):
        raise ApiError.grape("sort does not have a valid value")
    key = PROJECT_ORDER[order_by]
    projects.sort(key=lambda p: (key(p), p.id), reverse=sort == "desc")
    page, headers = paginate(request, projects)
    simple = request.bool_param("simple", False)
    return Response.json(200, [project_json(app, p, simple=simple) for p in page], headers)


def get_project(app: App, request: Request) -> Response:
    assert request.principal is not None
    require_scope(request.principal, write=False)
    project = app.project_for(request, request.path_params["id"])
    return Response.json(200, project_json(app, project, simple=False))
