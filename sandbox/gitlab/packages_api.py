"""Packages API: list a project's or a group's packages, one package, its files (with
``file_sha256``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.gitlab.auth import can_see_project, can_write_packages, require_scope
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.models import Project, iso
from sandbox.gitlab.pagination import paginate
from sandbox.gitlab.state import Package

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

PACKAGE_TYPES = [
    "composer",
    "conan",
    "generic",
    "golang",
    "helm",
    "maven",
    "npm",
    "nuget",
    "pypi",
    "terraform_module",
    "rubygems",
    "debian",
    "rpm",  # app/models/packages/package.rb: enum package_type (Grape `values:` is its keys)
    "ml_model",
]
STATUSES = ("default", "hidden", "processing", "error", "pending_destruction", "deprecated")
ORDER_BY = ("created_at", "name", "version", "type")


def register(app: App) -> None:
    base = "/api/v4/projects/{id}/packages"
    app.router.add("GET", base, "packages_api", lambda r: list_packages(app, r))
    app.router.add("GET", base + "/{package_id}", "packages_api", lambda r: get_package(app, r))
    app.router.add(
        "DELETE", base + "/{package_id}", "packages_api", lambda r: delete_package(app, r)
    )
    app.router.add(
        "GET", base + "/{package_id}/package_files", "packages_api", lambda r: files(app, r)
    )
    # Group level: GitLab refuses job tokens here as on the other group routes ("api" kind).
    app.router.add(
        "GET", "/api/v4/groups/{id}/packages", "api", lambda r: list_group_packages(app, r)
    )


def package_json(
    app: App, project: Project, package: Package, *, group: bool = False
) -> dict[str, object]:
    web_path = f"/{project.path_with_namespace}/-/packages/{package.id}"
    data: dict[str, object] = {
        "id": package.id,
        "name": package.name,
        "version": package.version,
        "package_type": package.package_type,
        "status": package.status,
        "_links": {
            "web_path": web_path,
            "delete_api_path": f"{app.url}/api/v4/projects/{project.id}/packages/{package.id}",
        },
        "created_at": iso(package.created_at),
        "last_downloaded_at": None,
        "tags": [],
    }
    if group:
        # lib/api/entities/package.rb: `expose :project_id, if: ->(_, opts) { opts[:group] }`,
        # `expose :project_path, if: opts[:group] && can read_project` (group route only; the
        # group finder only lists projects the caller can see).
        data["project_id"] = project.id
        data["project_path"] = project.path_with_namespace
    return data


def _project(app: App, request: Request, *, write: bool = False) -> Project:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"])
    require_scope(request.principal, write=write)
    return project


def _package(app: App, request: Request, project: Project) -> Package:
    ident = request.path_params["package_id"]
    for package in app.state.project_packages(project.id):
        if str(package.id) == ident:
            return package
    raise ApiError.not_found()


def list_packages(app: App, request: Request) -> Response:
    project = _project(app, request)
    packages = _filtered(request, app.state.project_packages(project.id))
    page, headers = paginate(request, packages)
    return Response.json(200, [package_json(app, project, p) for p in page], headers)


def list_group_packages(app: App, request: Request) -> Response:
    """`GET /groups/:id/packages`: the packages of the group's projects the caller can see."""
    assert request.principal is not None
    require_scope(request.principal, write=False)
    group = app.group_for(request, request.path_params["id"])
    projects = app.scenario.group_projects(
        group,
        include_subgroups=not request.bool_param("exclude_subgroups", False),
        with_shared=False,
    )
    owner: dict[int, Project] = {}
    packages: list[Package] = []
    for project in projects:
        if not can_see_project(request.principal, project):
            continue
        for package in app.state.project_packages(project.id):
            owner[package.id] = project
            packages.append(package)
    page, headers = paginate(request, _filtered(request, packages, owner))
    return Response.json(
        200, [package_json(app, owner[p.id], p, group=True) for p in page], headers
    )


def _filtered(
    request: Request, packages: list[Package], owner: dict[int, Project] | None = None
) -> list[Package]:
    """The list parameters both routes share: type, name, version, status, order, sort
    (`owner` given: the group route, which also orders by project_path)."""
    package_type = request.param("package_type")
    if package_type is None:
        # app/finders/concerns/packages/finder_helper.rb#filter_by_package_type:
        # `return packages.without_package_type(:terraform_module) unless package_type`.
        packages = [p for p in packages if p.package_type != "terraform_module"]
    else:
        if package_type not in PACKAGE_TYPES:
            raise ApiError.grape("package_type does not have a valid value")
        packages = [p for p in packages if p.package_type == package_type]
    name = request.param("package_name")
    if name and name.split():
        # Packages::FinderHelper#filter_by_package_name -> Package.search_by_name ->
        # fuzzy_search(query, [:name], use_minimum_char_limit: false) (lib/gitlab/sql/pattern.rb):
        # the query is split on whitespace and every word must match `name ILIKE '%word%'`,
        # with `%` and `_` escaped (sanitize_sql_like): a case-insensitive substring match on
        # the name *as stored*. No PEP 503 normalisation: `my-tool` does not find `My_Tool`.
        words = [word.lower() for word in name.split()]
        packages = [p for p in packages if all(word in p.name.lower() for word in words)]
    version = request.param("package_version")
    if version:
        packages = [p for p in packages if p.version == version]
    status = request.param("status")
    if status is not None:
        if status not in STATUSES:
            raise ApiError.grape("status does not have a valid value")
        packages = [p for p in packages if p.status == status]
    else:
        packages = [p for p in packages if p.status in ("default", "deprecated", "error")]
    order_by = request.param("order_by") or "created_at"
    # lib/api/group_packages.rb: order_by values %w[created_at name version type project_path];
    # lib/api/project_packages.rb without project_path.
    if order_by not in ORDER_BY and not (owner is not None and order_by == "project_path"):
        raise ApiError.grape("order_by does not have a valid value")
    sort = request.param("sort") or "asc"
    if sort not in ("asc", "desc"):
        raise ApiError.grape("sort does not have a valid value")
    key = {
        "created_at": lambda p: (p.created_at, p.id),
        "name": lambda p: (p.name, p.id),
        "version": lambda p: (p.version, p.id),
        "type": lambda p: (p.package_type, p.id),
        # Packages::Package.order_project_path: projects.path (not the full path)
        "project_path": lambda p: (owner[p.id].path if owner else "", p.id),
    }[order_by]
    packages.sort(key=key, reverse=sort == "desc")
    return packages


def get_package(app: App, request: Request) -> Response:
    project = _project(app, request)
    return Response.json(200, package_json(app, project, _package(app, request, project)))


def delete_package(app: App, request: Request) -> Response:
    assert request.principal is not None
    project = _project(app, request, write=True)
    if not can_write_packages(request.principal, project):
        raise ApiError.forbidden()
    package = _package(app, request, project)
    with app.state.lock:
        app.state.packages.pop(package.id, None)
    return Response(204)


def files(app: App, request: Request) -> Response:
    project = _project(app, request)
    package = _package(app, request, project)
    entries = [
        {
            "id": record.id,
            "package_id": record.package_id,
            "created_at": iso(record.created_at),
            "file_name": record.file_name,
            "size": record.size,
            "file_md5": record.md5,
            "file_sha1": record.sha1,
            "file_sha256": record.sha256,
        }
        for record in package.files
    ]
    page, headers = paginate(request, entries)
    return Response.json(200, page, headers)
