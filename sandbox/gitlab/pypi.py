"""PyPI registry: upload, simple index (project and group), file download."""

from __future__ import annotations

import html
import re
from functools import partial
from typing import TYPE_CHECKING

from sandbox.gitlab.auth import can_see_project, can_write_packages, require_scope
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.multipart import parse_multipart
from sandbox.gitlab.state import DuplicateFileError, Package, PackageFile, normalize_pypi_name

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

# Gitlab::Regex.pypi_version_regex (PEP 440)
VERSION_RE = re.compile(
    r"""\A(?:
        v?
        (?:([0-9]+)!)?
        ([0-9]+(?:\.[0-9]+)*)
        ([-_\.]?((a|b|c|rc|alpha|beta|pre|preview))[-_\.]?([0-9]+)?)?
        ((?:-([0-9]+))|(?:[-_\.]?(post|rev|r)[-_\.]?([0-9]+)?))?
        ([-_\.]?(dev)[-_\.]?([0-9]+)?)?
        (?:\+([a-z0-9]+(?:[-_\.][a-z0-9]+)*))?
    )\Z""",
    re.VERBOSE | re.IGNORECASE,
)
SHA256_RE = re.compile(r"\A[0-9a-f]{64}\Z", re.IGNORECASE)
STORED_METADATA = (
    "metadata_version",
    "author_email",
    "description",
    "description_content_type",
    "summary",
    "keywords",
    "md5_digest",
)
DESCRIPTION_LIMIT = 4000


def register(app: App) -> None:
    api = "/api/v4"
    project = f"{api}/projects/{{id}}/packages/pypi"
    group = f"{api}/groups/{{id}}/-/packages/pypi"
    app.router.add("POST", project, "pypi", lambda r: upload(app, r))
    for prefix, scope in ((project, "project"), (group, "group")):
        app.router.add("GET", f"{prefix}/simple", "pypi", partial(index, app, scope=scope))
        app.router.add(
            "GET", f"{prefix}/simple/{{name}}", "pypi", partial(package_page, app, scope=scope)
        )
        app.router.add(
            "GET",
            f"{prefix}/files/{{sha256}}/{{file_name}}",
            "pypi",
            partial(download, app, scope=scope),
        )


def upload(app: App, request: Request) -> Response:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"], package_route=True)
    if request.principal.kind == "anonymous":
        raise ApiError.unauthorized()
    require_scope(request.principal, write=True)
    if not can_write_packages(request.principal, project):
        raise ApiError.forbidden()
    parts = parse_multipart(request.header("content-type"), request.body)
    fields: dict[str, str] = {}
    content = None
    for part in parts:
        if part.name == "content" and part.filename is not None:
            content = part
        elif part.name not in fields:
            fields[part.name] = part.text
    missing = [
        name
        for name, present in (
            ("content", content is not None),
            ("name", bool(fields.get("name"))),
            ("version", bool(fields.get("version"))),
        )
        if not present
    ]
    if missing:
        raise ApiError.grape(", ".join(f"{name} is missing" for name in missing))
    assert content is not None and content.filename is not None
    if not VERSION_RE.match(fields["version"]):
        raise ApiError.grape("version is invalid")
    digest = fields.get("sha256_digest") or None
    if digest is not None and not SHA256_RE.match(digest):
        # lib/api/pypi_packages.rb: `optional :sha256_digest, regexp: /\A[0-9a-f]{64}\z/i`
        raise ApiError.grape("sha256_digest is invalid")
    # No comparison with the file: GitLab stores the client's digest as the file's sha256
    # (Packages::Pypi::CreatePackageService#file_params: file_sha256: params[:sha256_digest]),
    # and the simple index and the files route then use that digest. Without one we store the
    # computed digest [assumption: not checked against GitLab].
    file_name = content.filename.rsplit("/", 1)[-1]
    metadata = {k: fields[k] for k in STORED_METADATA if k in fields}
    if "description" in metadata:
        metadata["description"] = metadata["description"][:DESCRIPTION_LIMIT]
    try:
        app.state.add_pypi_file(
            project.id,
            fields["name"],
            fields["version"],
            file_name,
            content.content,
            requires_python=fields.get("requires_python", ""),
            metadata=metadata,
            sha256=digest.lower() if digest else None,
        )
    except DuplicateFileError:
        raise ApiError.bad_request("Validation failed: File name has already been taken") from None
    return Response.json(201, {"message": "201 Created"})


def _scope(app: App, request: Request, scope: str) -> tuple[set[int], str, str]:
    """(visible project ids, URL prefix of the files route, index title) of a project or group."""
    assert request.principal is not None
    ident = request.path_params["id"]
    if scope == "project":
        project = app.project_for(request, ident, package_route=True)
        prefix = f"{app.url}/api/v4/projects/{project.id}/packages/pypi"
        return {project.id}, prefix, project.name
    group = app.scenario.group(ident)
    if group is None:
        raise ApiError.not_found("Group")
    projects = app.scenario.group_projects(group, include_subgroups=True, with_shared=False)
    visible = {p.id for p in projects if can_see_project(request.principal, p)}
    if not visible and group.visibility != "public":
        if request.principal.kind == "anonymous":
            raise ApiError.unauthorized()
        raise ApiError.not_found("Group")
    return visible, f"{app.url}/api/v4/groups/{group.id}/-/packages/pypi", group.name


def _page(title: str, anchors: list[str]) -> Response:
    body = (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        f"    <title>Links for {html.escape(title)}</title>\n"
        "  </head>\n  <body>\n"
        f"    <h1>Links for {html.escape(title)}</h1>\n"
        f"    {''.join(anchor + '<br>' for anchor in anchors)}\n"
        "  </body>\n</html>\n"
    )
    return Response(200, body.encode(), [("Content-Type", "text/html; charset=utf-8")])


def index(app: App, request: Request, *, scope: str) -> Response:
    assert request.principal is not None
    require_scope(request.principal, write=False)
    project_ids, prefix, title = _scope(app, request, scope)
    seen: dict[str, Package] = {}
    for package in app.state.pypi_packages(project_ids, None):
        seen.setdefault(normalize_pypi_name(package.name), package)
    anchors = [
        f'<a href="{html.escape(prefix)}/simple/{normalized}" '
        f'data-requires-python="{html.escape(package.requires_python)}">'
        f"{html.escape(package.name)}</a>"
        for normalized, package in sorted(seen.items())
    ]
    return _page(title, anchors)


def package_page(app: App, request: Request, *, scope: str) -> Response:
    assert request.principal is not None
    require_scope(request.principal, write=False)
    project_ids, prefix, _ = _scope(app, request, scope)
    packages = app.state.pypi_packages(
        project_ids, normalize_pypi_name(request.path_params["name"])
    )
    if not packages:
        raise ApiError.not_found("Package")
    anchors = []
    for package in packages:
        for record in package.files:
            url = f"{prefix}/files/{record.sha256}/{record.file_name}#sha256={record.sha256}"
            anchors.append(
                f'<a href="{html.escape(url)}" '
                f'data-requires-python="{html.escape(package.requires_python)}">'
                f"{html.escape(record.file_name)}</a>"
            )
    return _page(packages[0].name, anchors)


def download(app: App, request: Request, *, scope: str) -> Response:
    assert request.principal is not None
    require_scope(request.principal, write=False)
    project_ids, _, _ = _scope(app, request, scope)
    record = app.state.pypi_file(
        project_ids, request.path_params["sha256"], request.path_params["file_name"]
    )
    if record is None:
        raise ApiError.not_found("Package")
    return file_response(app, record)


def file_response(app: App, record: PackageFile, *, checksum_header: bool = False) -> Response:
    if app.object_storage is not None:
        location = app.object_storage.signed_url(record.content, record.file_name)
        return Response(302, b"", [("Location", location), ("Content-Type", "text/html")])
    headers = [
        ("Content-Type", "application/octet-stream"),
        ("Content-Disposition", f'attachment; filename="{record.file_name}"'),
    ]
    if checksum_header:
        headers.append(("X-Checksum-SHA256", record.sha256))
    return Response(200, record.content, headers)
