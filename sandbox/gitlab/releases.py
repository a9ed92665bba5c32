"""Releases and release links API, after GitLab's lib/api/releases.rb and lib/api/release/links.rb.

What the stand-in honours, and where GitLab does it:
- Every route takes a CI job token (`route_setting :authentication, job_token_allowed: true`),
  so a release job can create its release with CI_JOB_TOKEN; deploy tokens are not accepted.
  Creating or updating needs Developer (`authorize_create_release!`): a member, or the job
  token of the same project; a personal token needs the `api` scope.
- POST /projects/:id/releases: `tag_name` required; an existing release of the tag is 409
  "Release already exists" (Releases::CreateService); a tag that does not exist is created from
  `ref`, and without `ref` it is 422 "Ref is not specified".
- `assets:links` on create, and POST .../assets/links: `name` and `url` required; within one
  release names, URLs and direct asset paths are unique (app/models/releases/link.rb:
  `uniqueness: { scope: :release }`); the URL must be http, https or ftp; `direct_asset_path`
  (or the deprecated `filepath`) must match FILEPATH_REGEX and be at most 128 characters;
  `link_type` is one of other, runbook, image, package (default other). Validation failures
  are 400 with the model's full messages ("Name has already been taken").
- PUT /projects/:id/releases/:tag_name updates name, description and released_at.
- GET .../releases/:tag_name/downloads/*direct_asset_path redirects (302) to the link's URL.
- Entities::Release / Entities::Releases::Link: `direct_asset_url` is
  `<project web URL>/-/releases/<tag>/downloads<direct_asset_path>`, or the URL without one.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from sandbox.gitlab.auth import can_write_packages, require_scope
from sandbox.gitlab.http import ApiError, Request, Response
from sandbox.gitlab.models import Project, iso

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

LINK_TYPES = ("other", "runbook", "image", "package")
FILEPATH_RE = re.compile(r"\A/(?:[\-\.\w]+/?)*[\da-zA-Z]+\Z")  # Releases::Link::FILEPATH_REGEX
TAG_RE = re.compile(r"\A[^/]+\Z")  # API::NO_SLASH_URL_PART_REGEX: %2F-encoded slashes only


@dataclass
class ReleaseLink:
    id: int
    name: str
    url: str
    filepath: str | None
    link_type: str


@dataclass
class Release:
    tag_name: str
    name: str
    description: str
    sha: str
    created_at: datetime
    released_at: datetime
    author: str
    links: list[ReleaseLink] = field(default_factory=list)


@dataclass
class ReleaseStore:
    releases: dict[int, dict[str, Release]] = field(default_factory=dict)  # project id -> tag
    tags: dict[int, dict[str, str]] = field(default_factory=dict)  # project id -> tag -> sha
    next_link_id: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)

    def release(self, project_id: int, tag: str) -> Release | None:
        return self.releases.get(project_id, {}).get(tag)


_stores: weakref.WeakKeyDictionary[App, ReleaseStore] = weakref.WeakKeyDictionary()


def store(app: App) -> ReleaseStore:
    """The releases of one stand-in (tests read them through GitLabStandIn.app)."""
    return _stores.setdefault(app, ReleaseStore())


def register(app: App) -> None:
    base = "/api/v4/projects/{id}/releases"
    # "jobs": PAT/OAuth headers plus the job token (JOB-TOKEN, job_token, Bearer), no deploy
    # tokens: what job_token_allowed routes accept.
    routes = [
        ("GET", base, lambda r: list_releases(app, r)),
        ("POST", base, lambda r: create_release(app, r)),
        ("GET", base + "/{tag_name}", lambda r: get_release(app, r)),
        ("PUT", base + "/{tag_name}", lambda r: update_release(app, r)),
        ("GET", base + "/{tag_name}/assets/links", lambda r: list_links(app, r)),
        ("POST", base + "/{tag_name}/assets/links", lambda r: create_link(app, r)),
        ("PUT", base + "/{tag_name}/assets/links/{link_id}", lambda r: update_link(app, r)),
        ("GET", base + "/{tag_name}/downloads/{path*}", lambda r: download(app, r)),
    ]
    for method, template, handler in routes:
        app.router.add(method, template, "jobs", handler)


# --- helpers ----------------------------------------------------------------------------------


def _body(request: Request) -> dict[str, Any]:
    content_type = (request.header("content-type") or "").split(";")[0].strip()
    if content_type == "application/json":
        try:
            payload = json.loads(request.body or b"{}")
        except ValueError:
            raise ApiError.bad_request("invalid JSON") from None
        if not isinstance(payload, dict):
            raise ApiError.grape("body is invalid")
        return payload
    # Form or query parameters (curl --form / --data): flat values only.
    return {key.removesuffix("[]"): values[0] for key, values in request.query.items()}


def _writer(app: App, request: Request) -> Project:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"])
    if request.principal.kind == "anonymous":
        raise ApiError.unauthorized()
    require_scope(request.principal, write=True)
    if request.principal.kind == "deploy" or not can_write_packages(request.principal, project):
        raise ApiError.forbidden()
    return project


def _reader(app: App, request: Request) -> Project:
    assert request.principal is not None
    project = app.project_for(request, request.path_params["id"])
    require_scope(request.principal, write=False)
    return project


def _tag(request: Request) -> str:
    tag = request.path_params["tag_name"]
    if not TAG_RE.match(tag):
        raise ApiError.not_found()
    return tag


def _existing(app: App, project: Project, tag: str) -> Release:
    release = store(app).release(project.id, tag)
    if release is None:
        raise ApiError.not_found()
    return release


def _time(value: object, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError.grape(f"{name} is invalid") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _link_errors(
    release: Release, name: object, url: object, filepath: object, skip: int | None = None
) -> list[str]:
    """Releases::Link validations, as ActiveRecord's full messages."""
    errors = []
    others = [link for link in release.links if link.id != skip]
    if not isinstance(url, str) or not url:
        errors.append("Url can't be blank")
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ftp") or not parts.netloc:
            errors.append("Url is blocked: Only allowed schemes are http, https, ftp")
        if any(link.url == url for link in others):
            errors.append("Url has already been taken")
    if not isinstance(name, str) or not name:
        errors.append("Name can't be blank")
    elif any(link.name == name for link in others):
        errors.append("Name has already been taken")
    if filepath not in (None, ""):
        text = str(filepath)
        if any(link.filepath == text for link in others):
            errors.append("Filepath has already been taken")
        if not FILEPATH_RE.match(text):
            errors.append("Filepath is in an invalid format")
        if len(text) > 128:
            errors.append("Filepath is too long (maximum is 128 characters)")
    return errors


def _new_link(app: App, release: Release, params: dict[str, Any]) -> ReleaseLink:
    link_type = params.get("link_type") or "other"
    if link_type not in LINK_TYPES:
        raise ApiError.grape("link_type does not have a valid value")
    filepath = params.get("direct_asset_path") or params.get("filepath") or None
    errors = _link_errors(release, params.get("name"), params.get("url"), filepath)
    if errors:
        raise ApiError(400, {"message": errors})
    with store(app).lock:
        link_id = store(app).next_link_id
        store(app).next_link_id += 1
    return ReleaseLink(link_id, str(params["name"]), str(params["url"]), filepath, link_type)


def _web_url(app: App, project: Project) -> str:
    return f"{app.url}/{project.path_with_namespace}"


def _link_json(app: App, project: Project, release: Release, link: ReleaseLink) -> dict[str, Any]:
    direct = link.url
    if link.filepath:
        tag = quote(release.tag_name, safe="")
        direct = f"{_web_url(app, project)}/-/releases/{tag}/downloads{link.filepath}"
    return {
        "id": link.id,
        "name": link.name,
        "url": link.url,
        "direct_asset_url": direct,
        "link_type": link.link_type,
    }


def _release_json(app: App, project: Project, release: Release) -> dict[str, Any]:
    web = _web_url(app, project)
    tag = quote(release.tag_name, safe="")
    links = sorted(release.links, key=lambda link: link.id, reverse=True)  # Link.sorted
    return {
        "name": release.name,
        "tag_name": release.tag_name,
        "description": release.description,
        "created_at": iso(release.created_at),
        "released_at": iso(release.released_at),
        "upcoming_release": release.released_at > datetime.now(timezone.utc),
        "author": {"username": release.author},
        "commit": {"id": release.sha, "short_id": release.sha[:8]},
        "commit_path": f"/{project.path_with_namespace}/-/commit/{release.sha}",
        "tag_path": f"/{project.path_with_namespace}/-/tags/{tag}",
        "assets": {
            "count": len(links) + 4,  # GitLab also counts its four source archives
            "sources": [
                {
                    "format": fmt,
                    "url": f"{web}/-/archive/{tag}/{project.path}-{tag}.{fmt}",
                }
                for fmt in ("zip", "tar.gz", "tar.bz2", "tar")
            ],
            "links": [_link_json(app, project, release, link) for link in links],
        },
        "_links": {"self": f"{web}/-/releases/{tag}"},
    }


def _author(request: Request) -> str:
    assert request.principal is not None
    return request.principal.user or "gitlab-ci-token"


# --- handlers ---------------------------------------------------------------------------------


def list_releases(app: App, request: Request) -> Response:
    project = _reader(app, request)
    releases = sorted(
        store(app).releases.get(project.id, {}).values(),
        key=lambda release: release.released_at,
        reverse=True,
    )
    return Response.json(200, [_release_json(app, project, release) for release in releases])


def get_release(app: App, request: Request) -> Response:
    project = _reader(app, request)
    return Response.json(200, _release_json(app, project, _existing(app, project, _tag(request))))


def create_release(app: App, request: Request) -> Response:
    project = _writer(app, request)
    params = _body(request)
    tag = params.get("tag_name")
    if not isinstance(tag, str) or not tag:
        raise ApiError.grape("tag_name is missing")
    releases = store(app)
    if releases.release(project.id, tag) is not None:
        raise ApiError.message(409, "Release already exists")
    tags = releases.tags.setdefault(project.id, {})
    sha = tags.get(tag)
    if sha is None:
        ref = params.get("ref")
        if not ref:
            raise ApiError.message(422, "Ref is not specified")
        sha = str(ref) if re.fullmatch(r"[0-9a-f]{40}", str(ref)) else "0" * 40
        tags[tag] = sha
    now = datetime.now(timezone.utc)
    release = Release(
        tag_name=tag,
        name=str(params.get("name") or tag),
        description=str(params.get("description") or ""),
        sha=sha,
        created_at=now,
        released_at=_time(params.get("released_at"), "released_at") or now,
        author=_author(request),
    )
    assets = params.get("assets") or {}
    links = assets.get("links", []) if isinstance(assets, dict) else []
    for entry in links if isinstance(links, list) else []:
        try:
            release.links.append(_new_link(app, release, dict(entry)))
        except ApiError as error:
            # release.save! fails as a whole: "Validation failed: Links ..."
            payload = error.payload if isinstance(error.payload, dict) else {}
            message = payload.get("message") or payload.get("error")
            detail = ", ".join(message) if isinstance(message, list) else str(message)
            raise ApiError.message(
                400, f"Validation failed: Links {detail[:1].lower()}{detail[1:]}"
            ) from None
    with releases.lock:
        if releases.release(project.id, tag) is not None:
            raise ApiError.message(409, "Release already exists")
        releases.releases.setdefault(project.id, {})[tag] = release
    return Response.json(201, _release_json(app, project, release))


def update_release(app: App, request: Request) -> Response:
    project = _writer(app, request)
    release = _existing(app, project, _tag(request))
    params = _body(request)
    if "name" in params:
        release.name = str(params["name"])
    if "description" in params:
        release.description = str(params["description"])
    released_at = _time(params.get("released_at"), "released_at")
    if released_at is not None:
        release.released_at = released_at
    return Response.json(200, _release_json(app, project, release))


def list_links(app: App, request: Request) -> Response:
    project = _reader(app, request)
    release = _existing(app, project, _tag(request))
    links = sorted(release.links, key=lambda link: link.id, reverse=True)
    return Response.json(200, [_link_json(app, project, release, link) for link in links])


def create_link(app: App, request: Request) -> Response:
    project = _writer(app, request)
    release = _existing(app, project, _tag(request))
    params = _body(request)
    for required in ("name", "url"):
        if not params.get(required):
            raise ApiError.grape(f"{required} is missing")
    link = _new_link(app, release, params)
    with store(app).lock:
        release.links.append(link)
    return Response.json(201, _link_json(app, project, release, link))


def update_link(app: App, request: Request) -> Response:
    project = _writer(app, request)
    release = _existing(app, project, _tag(request))
    link = next((x for x in release.links if str(x.id) == request.path_params["link_id"]), None)
    if link is None:
        raise ApiError.not_found()
    params = _body(request)
    if not params.get("name") and not params.get("url"):
        raise ApiError.grape("name, url are missing, at least one parameter must be provided")
    name = params.get("name") or link.name
    url = params.get("url") or link.url
    filepath = params.get("direct_asset_path") or params.get("filepath") or link.filepath
    link_type = params.get("link_type") or "other"  # Grape's default applies on update too
    if link_type not in LINK_TYPES:
        raise ApiError.grape("link_type does not have a valid value")
    errors = _link_errors(release, name, url, filepath, skip=link.id)
    if errors:
        raise ApiError(400, {"message": errors})
    link.name, link.url, link.filepath, link.link_type = str(name), str(url), filepath, link_type
    return Response.json(200, _link_json(app, project, release, link))


def download(app: App, request: Request) -> Response:
    project = _reader(app, request)
    release = _existing(app, project, _tag(request))
    wanted = "/" + request.path_params["path"]
    link = next((x for x in release.links if x.filepath == wanted), None)
    if link is None:
        raise ApiError.not_found()
    return Response(302, b"", [("Location", link.url)])
