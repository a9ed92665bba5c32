"""Releases and release links API, after GitLab's lib/api/releases.rb and lib/api/release/links.rb.

What the stand-in honours, and where GitLab does it:
- Every route takes a CI job token (`route_setting :authentication, job_token_allowed: true`),
  so a release job can create its release with CI_JOB_TOKEN; no route has
  `deploy_token_allowed`, so a DEPLOY-TOKEN header is ignored (anonymous: 404 "Project Not
  Found" on a private project, 403 on a visible one). Creating or updating needs Developer
  (`authorize! :create_release` / `:update_release`, which answer 403 even without a
  credential): a member, or the job token of the same project; a personal token needs `api`.
- POST /projects/:id/releases: `tag_name` required; an existing release of the tag is 409
  "Release already exists" (app/services/releases/create_service.rb); a tag that does not
  exist is created from `ref`, and without `ref` it is 422 "Ref is not specified".
- `assets:links` on create, and POST .../assets/links: `name` and `url` required; within one
  release names, URLs and direct asset paths are unique (app/models/releases/link.rb:
  `uniqueness: { scope: :release }`); the URL must be http, https or ftp; `direct_asset_path`
  (or the deprecated `filepath`) is at most 128 characters and matches FILEPATH_REGEX.
  POST/PUT .../assets/links take `link_type` in other, runbook, image, package (Grape
  `values:`, default other); model validation failures are 400 with the full messages
  ("Name has already been taken"). On POST /releases they are 400 "Validation failed: Links
  ...", an unknown link_type is 400 "'x' is not a valid link_type".
- PUT /projects/:id/releases/:tag_name updates name, description and released_at; 403 when the
  tag has no release, 400 "params is empty" with nothing to change.
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
from sandbox.gitlab.pagination import paginate

if TYPE_CHECKING:
    from sandbox.gitlab.app import App

LINK_TYPES = ("other", "runbook", "image", "package")
# app/models/releases/link.rb (current): FILEPATH_REGEX = %r{\A\/[^\/](?!.*\/\/.*)[\-\.\w\/]+[\da-zA-Z]+\z}
# ("Regex modified to prevent catastrophic backtracking", issue 218753), FILEPATH_MAX_LENGTH 128.
# Ruby's \w is ASCII-only, hence re.ASCII. At least three characters after the slash, no "//".
FILEPATH_RE = re.compile(r"\A/[^/](?!.*//.*)[\-.\w/]+[\da-zA-Z]+\Z", re.ASCII)
FILEPATH_MAX_LENGTH = 128
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
    # No `authenticate!` on these routes: a caller without a credential the route honours (a
    # DEPLOY-TOKEN header is ignored here) gets, on a project it can see, what
    # `authorize! :create_release` answers (lib/api/helpers.rb: `forbidden!(reason) unless
    # can?(...)`): 403, not 401.
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
    # app/models/releases/link.rb: `validates :filepath, uniqueness: { scope: :release },
    # allow_blank: true` then `validate :filepath_format_valid?`, which returns for nil only, and
    # adds *one* error: "is too long (maximum is 128 characters)" before running the regex, else
    # "is in an invalid format". So "" (a blank path given) is an invalid format.
    if filepath is not None:
        text = str(filepath)
        if text and any(link.filepath == text for link in others):
            errors.append("Filepath has already been taken")
        if len(text) > FILEPATH_MAX_LENGTH:
            errors.append(f"Filepath is too long (maximum is {FILEPATH_MAX_LENGTH} characters)")
        elif not FILEPATH_RE.match(text):
            errors.append("Filepath is in an invalid format")
    return errors


def _filepath(params: dict[str, Any], default: str | None = None) -> str | None:
    """app/services/releases/links/params.rb: `hash[:filepath] = filepath if provided_filepath?`
    with `params[:direct_asset_path] || params[:filepath]` (Ruby: "" is truthy, so kept)."""
    if "direct_asset_path" not in params and "filepath" not in params:
        return default
    value = params.get("direct_asset_path")
    if value is None:
        value = params.get("filepath")
    return None if value is None else str(value)


def _new_link(
    app: App, release: Release, params: dict[str, Any], *, in_release: bool = False
) -> ReleaseLink:
    link_type = params.get("link_type") or "other"
    if link_type not in LINK_TYPES:
        if in_release:
            # lib/api/releases.rb declares assets:links:link_type without `values:`, so the value
            # reaches the model: Rails' enum raises ArgumentError "'x' is not a valid link_type",
            # which Releases::CreateService#create_release rescues as error(e.message, 400).
            raise ApiError.message(400, f"'{link_type}' is not a valid link_type")
        raise ApiError.grape("link_type does not have a valid value")
    filepath = _filepath(params)
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
    # lib/api/entities/releases/link.rb: id, name, url, direct_asset_url, `expose :external?, as:
    # :external` (app/models/releases/link.rb: internal? is url.start_with?(project.web_url)),
    # link_type.
    return {
        "id": link.id,
        "name": link.name,
        "url": link.url,
        "direct_asset_url": direct,
        "external": not link.url.startswith(_web_url(app, project)),
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
    # lib/api/releases.rb: `present_cached paginate(releases)` (20 a page by default).
    page, headers = paginate(request, releases)
    return Response.json(200, [_release_json(app, project, release) for release in page], headers)


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
    draft = Release(release.tag_name, "", "", sha, now, now, "")  # nothing saved yet
    for entry in links if isinstance(links, list) else []:
        try:
            # Each new link is validated against the saved links of the release, and there are
            # none yet: Rails' uniqueness validator queries the table, not unsaved siblings.
            link = _new_link(app, draft, dict(entry), in_release=True)
        except ApiError as error:
            payload = error.payload if isinstance(error.payload, dict) else {}
            message = payload.get("message") or payload.get("error")
            if isinstance(message, str):
                raise  # not a model validation (the enum's ArgumentError)
            # release.save! fails as a whole: RecordInvalid "Validation failed: Links ..."
            # (nested errors are named `links.<attribute>`), rescued as error(e.message, 400).
            detail = ", ".join(message) if isinstance(message, list) else str(message)
            raise ApiError.message(
                400, f"Validation failed: Links {detail[:1].lower()}{detail[1:]}"
            ) from None
        for column in ("name", "url"):
            if any(getattr(other, column) == getattr(link, column) for other in release.links):
                # Two new links with one name or URL: the validator cannot see it, the unique
                # index does (db/schema: index_release_links_on_release_id_and_name and
                # _and_url, unique: true); save! raises ActiveRecord::RecordNotUnique, which
                # create_release rescues as error(e.message, 400). Its first line is PG's.
                raise ApiError.message(
                    400,
                    "PG::UniqueViolation: ERROR:  duplicate key value violates unique constraint"
                    f' "index_release_links_on_release_id_and_{column}"',
                )
        if link.filepath and any(other.filepath == link.filepath for other in release.links):
            # Not determined from GitLab's sources: no unique index on filepath was found, so
            # GitLab may accept this. The stand-in refuses it, so that nothing relies on it.
            raise ApiError.message(400, "Validation failed: Links filepath has already been taken")
        release.links.append(link)
    with releases.lock:
        if releases.release(project.id, tag) is not None:
            raise ApiError.message(409, "Release already exists")
        releases.releases.setdefault(project.id, {})[tag] = release
    return Response.json(201, _release_json(app, project, release))


def update_release(app: App, request: Request) -> Response:
    project = _writer(app, request)
    # lib/api/releases.rb: `authorize_update_release!` is `authorize! :update_release, release`
    # with `release` nil when the tag has none: 403, not 404 (spec/requests/api/releases_spec.rb
    # "when there are no corresponding releases ... forbids the request").
    release = store(app).release(project.id, _tag(request))
    if release is None:
        raise ApiError.forbidden()
    params = _body(request)
    # Releases::UpdateService: `return error('params is empty', 400) if empty_params?`.
    if not any(key in params for key in ("name", "description", "released_at", "milestones")):
        raise ApiError.message(400, "params is empty")
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
    # lib/api/release/links.rb: `present paginate(release.links.sorted)`; the Release entity's
    # assets.links is not paginated.
    page, headers = paginate(request, links)
    return Response.json(200, [_link_json(app, project, release, link) for link in page], headers)


def create_link(app: App, request: Request) -> Response:
    project = _writer(app, request)
    release = _existing(app, project, _tag(request))
    params = _body(request)
    # lib/api/release/links.rb: `requires :name`, `requires :url`; Grape reports every missing
    # one at once ("name is missing, url is missing").
    missing = [f"{key} is missing" for key in ("name", "url") if params.get(key) is None]
    if missing:
        raise ApiError.grape(", ".join(missing))
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
    filepath = _filepath(params, link.filepath)
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
