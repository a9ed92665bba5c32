"""Generic package registry: PUT raw bytes, GET the newest file of that name."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sandbox.gitlab.auth import can_write_packages, require_scope
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.models import iso
from sandbox.gitlab.pypi import file_response
from sandbox.gitlab.state import DuplicateFileError

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

NAME_RE = re.compile(r"\A[A-Za-z0-9._+-]+\Z")  # Gitlab::Regex generic package name / file name
VERSION_RE = re.compile(r"\A(?!.*\.\.)[\w+.-]+\Z", re.ASCII)


def register(app: App) -> None:
    route = "/api/v4/projects/{id}/packages/generic/{package_name}/{package_version}/{file_name*}"
    app.router.add("PUT", route, "generic", lambda r: upload(app, r))
    app.router.add("GET", route, "generic", lambda r: download(app, r))


def _validated(request: Request) -> tuple[str, str, str]:
    name = request.path_params["package_name"]
    version = request.path_params["package_version"]
    file_name = request.path_params["file_name"]
    segments = file_name.split("/")
    if not NAME_RE.match(name):
        raise ApiError.grape("package_name is invalid")
    if not VERSION_RE.match(version):
        raise ApiError.grape("package_version is invalid")
    if any(segment in ("", ".", "..") for segment in segments):
        raise ApiError.grape("file_name should be a valid file path")
    if not all(NAME_RE.match(segment) for segment in segments):
        raise ApiError.grape("file_name is invalid")
    return name, version, file_name


def upload(app: App, request: Request) -> Response:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"], package_route=True)
    if request.principal.kind == "anonymous":
        raise ApiError.unauthorized()
    require_scope(request.principal, write=True)
    if not can_write_packages(request.principal, project):
        raise ApiError.forbidden()
    name, version, file_name = _validated(request)
    status = request.param("status") or "default"
    if status not in ("default", "hidden"):
        raise ApiError.grape("status does not have a valid value")
    select = request.param("select")
    if select is not None and select != "package_file":
        raise ApiError.grape("select does not have a valid value")
    try:
        record = app.state.add_generic_file(
            project.id,
            name,
            version,
            file_name,
            request.body,
            status=status,
            duplicates_allowed=app.generic_duplicates_allowed,
            status_given=request.param("status") is not None,
        )
    except DuplicateFileError:
        raise ApiError.bad_request("Duplicate package is not allowed") from None
    if select == "package_file":
        created = iso(record.created_at)
        return Response.json(
            200,
            {
                "id": record.id,
                "package_id": record.package_id,
                "created_at": created,
                "updated_at": created,
                "size": record.size,
                "file_store": 1,
                "file_md5": None,
                "file_sha1": None,
                "file_name": record.file_name,
                "file": {
                    "url": f"/{record.sha256[:2]}/{record.sha256[2:4]}/{record.sha256}"
                    f"/packages/{record.package_id}/files/{record.id}/{record.file_name}"
                },
                "file_sha256": record.sha256,
                "verification_retry_at": None,
                "verified_at": None,
                "verification_failure": None,
                "verification_retry_count": None,
                "verification_checksum": None,
                "verification_state": 0,
                "verification_started_at": None,
                "new_file_path": None,
            },
        )
    return Response.json(201, {"message": "201 Created"})


def download(app: App, request: Request) -> Response:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"], package_route=True)
    require_scope(request.principal, write=False)
    name, version, file_name = _validated(request)
    # app/finders/packages/generic/package_finder.rb: `project.packages.generic.installable
    # .by_name_and_version!` (installable: default, hidden, deprecated; app/models/packages/
    # package.rb INSTALLABLE_STATUSES); then the newest file of that name (PackageFileFinder:
    # `.with_file_name(file_name).last!`).
    if not any(
        p.package_type == "generic"
        and p.name == name
        and p.version == version
        and p.status in ("default", "hidden", "deprecated")
        for p in app.state.project_packages(project.id)
    ):
        raise ApiError.not_found("Package")
    record = app.state.generic_file(project.id, name, version, file_name)
    if record is None:
        raise ApiError.not_found("Package file")
    return file_response(app, record, checksum_header=True)
