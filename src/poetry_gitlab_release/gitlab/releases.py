"""Create or update the GitLab Release of a tag, with asset links (Releases API).

GitLab's contract (lib/api/releases.rb, lib/api/release/links.rb, app/models/releases/link.rb):
- GET /projects/:id/releases/:tag_name is 404 until the release exists; POST
  /projects/:id/releases creates it (409 "Release already exists" when it does), with
  `ref` creating the tag if it is missing; PUT /projects/:id/releases/:tag_name changes the
  name and description. All accept the CI job token (`job_token_allowed: true`).
- Within one release, link names, URLs and direct asset paths are unique; POST
  .../assets/links adds one, PUT .../assets/links/:link_id changes one.

So the update is idempotent: a second run finds the release and its links as it would write
them and changes nothing; a link of ours whose URL changed is updated in place; links that
others added to the release are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ApiError, NotFoundError
from poetry_gitlab_release.gitlab.urls import encode_id

if TYPE_CHECKING:
    from poetry_gitlab_release.gitlab.client import GitLabClient


# app/models/releases/link.rb: a link's direct asset path (`filepath`) is at most 128 characters
# and matches FILEPATH_REGEX %r{\A\/[^\/](?!.*\/\/.*)[\-\.\w\/]+[\da-zA-Z]+\z} (Ruby's \w is
# ASCII); any other value fails the whole POST /projects/:id/releases with 400.
_DIRECT_ASSET_PATH = re.compile(r"\A/[^/](?!.*//.*)[\-.\w/]+[\da-zA-Z]+\Z", re.ASCII)
_DIRECT_ASSET_PATH_MAX = 128


def direct_asset_path(file_name: str) -> str | None:
    """`/<file_name>` when GitLab accepts it as a direct asset path, else None (a plain link:
    a local version's `+`, or a name too long)."""
    path = f"/{file_name}"
    if len(path) > _DIRECT_ASSET_PATH_MAX or not _DIRECT_ASSET_PATH.match(path):
        return None
    return path


@dataclass(frozen=True)
class AssetLink:
    name: str
    url: str
    direct_asset_path: str | None = None  # "/file.whl": a permanent link on the release
    link_type: str = "package"  # other | runbook | image | package

    def matches(self, existing: Mapping[str, Any]) -> bool:
        return (
            existing.get("name") == self.name
            and existing.get("url") == self.url
            and existing.get("link_type", "other") == self.link_type
            and (
                self.direct_asset_path is None
                or str(existing.get("direct_asset_url", "")).endswith(self.direct_asset_path)
            )
        )

    def payload(self) -> dict[str, str]:
        body = {"name": self.name, "url": self.url, "link_type": self.link_type}
        if self.direct_asset_path:
            body["direct_asset_path"] = self.direct_asset_path
        return body


@dataclass(frozen=True)
class ReleasePageResult:
    url: str | None  # the Release page (web)
    created: bool
    description_updated: bool
    links_added: tuple[str, ...]
    links_updated: tuple[str, ...]
    links: tuple[dict[str, Any], ...]  # as GitLab returns them after the update


def upsert_release(
    client: GitLabClient,
    project: str | int,
    tag: str,
    *,
    name: str,
    description: str,
    links: Sequence[AssetLink],
    ref: str | None = None,
) -> ReleasePageResult:
    """Make the release of `tag` have this name, description and these links."""
    base = client.api(f"projects/{encode_id(project)}/releases")
    release_url = f"{base}/{encode_id(tag)}"
    existing = _get(client, release_url)
    created = False
    if existing is None:
        body: dict[str, Any] = {
            "tag_name": tag,
            "name": name,
            "description": description,
            "assets": {"links": [link.payload() for link in links]},
        }
        if ref:
            body["ref"] = ref
        response = client.request("POST", base, json=body, expected=(201, 409))
        if response.status_code == 201:
            created = True
            document = response.json()
            return _result(document, created=True, updated=False, added=links, changed=())
        existing = _get(client, release_url)  # created by a concurrent job meanwhile
        if existing is None:
            raise ApiError(
                f"POST {base}: the release of {tag} exists but cannot be read", status=409
            )
    description_updated = False
    if existing.get("description") != description or existing.get("name") != name:
        response = client.request(
            "PUT",
            release_url,
            json={"name": name, "description": description},
            expected=(200,),
        )
        existing = response.json()
        description_updated = True
    current: list[dict[str, Any]] = list((existing.get("assets") or {}).get("links") or [])
    added: list[AssetLink] = []
    changed: list[AssetLink] = []
    for link in links:
        if any(link.matches(item) for item in current):
            continue
        same = [
            item for item in current if item.get("name") == link.name or item.get("url") == link.url
        ]
        if same:
            link_url = f"{release_url}/assets/links/{same[0]['id']}"
            client.request("PUT", link_url, json=link.payload(), expected=(200,))
            changed.append(link)
        else:
            client.request(
                "POST", f"{release_url}/assets/links", json=link.payload(), expected=(201,)
            )
            added.append(link)
    if added or changed:
        refreshed = _get(client, release_url)
        existing = refreshed if refreshed is not None else existing
    return _result(
        existing,
        created=created,
        updated=description_updated,
        added=added,
        changed=changed,
    )


def _get(client: GitLabClient, url: str) -> dict[str, Any] | None:
    try:
        document = client.get_json(url)
    except NotFoundError:
        return None
    if not isinstance(document, dict):
        raise ApiError(f"GET {url}: expected a JSON object", status=200)
    return document


def _result(
    document: Mapping[str, Any],
    *,
    created: bool,
    updated: bool,
    added: Sequence[AssetLink],
    changed: Sequence[AssetLink],
) -> ReleasePageResult:
    links = tuple((document.get("assets") or {}).get("links") or [])
    page = (document.get("_links") or {}).get("self")
    return ReleasePageResult(
        url=str(page) if page else None,
        created=created,
        description_updated=updated,
        links_added=tuple(link.name for link in added),
        links_updated=tuple(link.name for link in changed),
        links=links,
    )
