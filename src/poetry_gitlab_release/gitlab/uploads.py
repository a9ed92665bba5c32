"""Uploads to GitLab's package registries, and what is already there.

- `upload_pypi`: multipart POST to the project's PyPI registry. The body is streamed from the
  file with an exact Content-Length, built by a factory so that a retry streams it again.
- `upload_generic`: raw PUT to the generic package registry, streamed the same way.
- `package_files`: the Packages API lookup behind idempotent publishing (list packages of a
  type, exact match on the PEP 503 name and version, then their files with `file_sha256`).
- `published_by_name`: what is published, from what the credential may read: the Packages API,
  or for a deploy token (which that API refuses) the simple index and generic file GETs.
- `download_generic`: a small file (a signature) from the generic registry.
Memory stays constant whatever the file size; the client does retries, auth and redirects.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from poetry_gitlab_release.files import read_chunks
from poetry_gitlab_release.gitlab.bodies import BodyFactory
from poetry_gitlab_release.gitlab.client import Auth
from poetry_gitlab_release.gitlab.urls import encode_id, generic_file_url

if TYPE_CHECKING:
    from poetry_gitlab_release.gitlab.client import GitLabClient

ALREADY_TAKEN = "already been taken"


class Progress(Protocol):
    """Told about the bytes of one upload; `start` again when a retry re-streams the body."""

    def start(self, total: int) -> None: ...

    def advance(self, count: int) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True)
class RemoteFile:
    id: int
    file_name: str
    sha256: str | None
    size: int | None


def _stream(path: Path, head: bytes, tail: bytes, progress: Progress | None) -> Iterator[bytes]:
    total = len(head) + path.stat().st_size + len(tail)
    if progress is not None:
        progress.start(total)
    if head:
        yield head
        if progress is not None:
            progress.advance(len(head))
    for block in read_chunks(path):
        yield block
        if progress is not None:
            progress.advance(len(block))
    if tail:
        yield tail
        if progress is not None:
            progress.advance(len(tail))
    if progress is not None:
        progress.finish()


def _quote(value: str) -> str:
    """A form-data parameter value: quotes and line breaks escaped the way browsers do."""
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


@dataclass(frozen=True)
class MultipartBody:
    """multipart/form-data with text fields first and one file part last, streamed."""

    fields: Sequence[tuple[str, str]]
    file_field: str
    path: Path
    file_name: str
    boundary: str

    @classmethod
    def create(
        cls, fields: Sequence[tuple[str, str]], file_field: str, path: Path, file_name: str
    ) -> MultipartBody:
        return cls(tuple(fields), file_field, path, file_name, secrets.token_hex(16))

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def head(self) -> bytes:
        parts = []
        for name, value in self.fields:
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"'
                f"\r\n\r\n".encode()
                + value.encode("utf-8")
                + b"\r\n"
            )
        parts.append(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{_quote(self.file_field)}"'
            f'; filename="{_quote(self.file_name)}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
        )
        return b"".join(parts)

    def tail(self) -> bytes:
        return f"\r\n--{self.boundary}--\r\n".encode()

    def content_length(self) -> int:
        return len(self.head()) + self.path.stat().st_size + len(self.tail())

    def factory(self, progress: Progress | None = None) -> BodyFactory:
        head, tail = self.head(), self.tail()
        return lambda: _stream(self.path, head, tail, progress)


def pypi_fields(path: Path) -> list[tuple[str, str]]:
    """The form fields poetry and twine send with a distribution (metadata and digests)."""
    from poetry.publishing.uploader import Uploader

    data = Uploader.post_data(path)
    fields: list[tuple[str, str]] = [(":action", "file_upload"), ("protocol_version", "1")]
    for key, value in data.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        fields.extend((key, str(item)) for item in values if item is not None)
    return fields


def upload_pypi(
    client: GitLabClient,
    upload_url: str,
    path: Path,
    fields: Sequence[tuple[str, str]],
    progress: Progress | None = None,
) -> None:
    body = MultipartBody.create(fields, "content", path, path.name)
    client.request(
        "POST",
        upload_url,
        auth=Auth.BASIC,
        headers={"Content-Type": body.content_type, "Content-Length": str(body.content_length())},
        body=body.factory(progress),
        expected=(200, 201),
    )


def upload_generic(
    client: GitLabClient,
    project: str,
    package: str,
    version: str,
    path: Path,
    file_name: str,
    progress: Progress | None = None,
) -> None:
    url = generic_file_url(client.connection.api_url, project, package, version, file_name)
    client.request(
        "PUT",
        url,
        auth=Auth.REST,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(path.stat().st_size),
        },
        body=lambda: _stream(path, b"", b"", progress),
        expected=(200, 201),
    )


def download_generic(
    client: GitLabClient, project: str, package: str, version: str, file_name: str
) -> bytes:
    url = generic_file_url(client.connection.api_url, project, package, version, file_name)
    return client.request("GET", url, auth=Auth.REST, expected=(200,)).content


def package_files(
    client: GitLabClient, project: str, *, package_type: str, name: str, version: str
) -> list[RemoteFile]:
    """Files of the package `name` `version` (PEP 503 match), oldest first; [] when absent.

    The query matches any spelling GitLab may have stored (see `name_search_term`); the PEP 503
    comparison then keeps this package only.
    """
    from packaging.version import InvalidVersion, Version

    from poetry_gitlab_release.gitlab.simple_index import name_search_term, normalize_name

    def same_version(other: str) -> bool:
        try:
            return Version(other) == Version(version)
        except InvalidVersion:
            return other == version

    base = f"projects/{encode_id(project)}/packages"
    params = {
        "package_type": package_type,
        "package_name": name_search_term(name),
        "package_version": version,
    }
    found: list[RemoteFile] = []
    for package in client.paginate(base, params):
        if normalize_name(str(package.get("name", ""))) != normalize_name(name):
            continue
        if not same_version(str(package.get("version", ""))):
            continue
        for item in client.paginate(f"{base}/{package['id']}/package_files"):
            found.append(
                RemoteFile(
                    id=int(item.get("id", 0)),
                    file_name=str(item.get("file_name", "")),
                    sha256=item.get("file_sha256"),
                    size=item.get("size"),
                )
            )
    found.sort(key=lambda remote: remote.id)
    return found


def latest_by_name(files: Sequence[RemoteFile]) -> dict[str, RemoteFile]:
    """The newest file of each name: the generic registry serves the newest duplicate."""
    latest: dict[str, RemoteFile] = {}
    for remote in sorted(files, key=lambda item: item.id):
        latest[remote.file_name] = remote
    return latest


def published_by_name(
    client: GitLabClient,
    project: str,
    *,
    registry: str,
    name: str,
    version: str,
    file_names: Sequence[str],
) -> dict[str, RemoteFile]:
    """The newest published file of each of `file_names` in the package `name` `version`.

    Personal and job tokens ask the Packages API. A deploy token cannot: GitLab's Packages API
    routes do not take deploy tokens (no `deploy_token_allowed`; a private project answers 404).
    It reads what the registries serve it instead: the project's PyPI simple page, whose links
    carry each file's sha256, and each generic file by GET (the newest of that name, hashed
    here; only signature files live there, all small).
    """
    import hashlib

    from poetry_gitlab_release.config.credentials import TokenKind

    credential = client.credential
    if credential is None or credential.kind is not TokenKind.DEPLOY:
        files = package_files(client, project, package_type=registry, name=name, version=version)
        return {
            file_name: remote
            for file_name, remote in latest_by_name(files).items()
            if file_name in file_names
        }
    from poetry_gitlab_release.errors import NotFoundError
    from poetry_gitlab_release.gitlab.downloads import fetch_small_file
    from poetry_gitlab_release.gitlab.simple_index import fetch_project_page
    from poetry_gitlab_release.gitlab.urls import pypi_simple_url

    found: dict[str, RemoteFile] = {}
    if registry == "pypi":
        try:
            page = fetch_project_page(
                client, pypi_simple_url(client.connection.api_url, project=project), name
            )
        except NotFoundError:
            return found  # no such package yet
        for position, item in enumerate(page):
            if item.name in file_names:
                found[item.name] = RemoteFile(position, item.name, item.sha256, None)
        return found
    for file_name in file_names:
        url = generic_file_url(client.connection.api_url, project, name, version, file_name)
        data = fetch_small_file(client, url, file_name)
        if data is not None:
            found[file_name] = RemoteFile(0, file_name, hashlib.sha256(data).hexdigest(), len(data))
    return found
