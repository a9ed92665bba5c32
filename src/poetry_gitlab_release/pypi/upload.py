"""One file to a PyPI index's legacy upload API, with its attestation; what is there already.

The form is what twine sends (Poetry's `Uploader.post_data`: metadata and digests, then
`content`) plus `attestations`, a JSON list with the file's PEP 740 attestation. warehouse's
refusals put the reason in the HTTP status line (`_exc_with_message`,
warehouse/forklift/legacy.py); each becomes one line here:
- `Invalid attestations supplied during upload: ...` -> AttestationRefusedError;
- `Uploading new files to releases older than 14 days is not allowed.` (pypi/warehouse#19727)
  -> ReleaseClosedError, never retried;
- `File already exists ...` -> ConflictError;
- 403 `Invalid API Token: token is expired` -> the upload token's 15 minutes are over;
- any other 4xx -> the index's reason, quoted.

Existing files: the JSON API (`/pypi/<name>/<version>/json`, `urls[].digests.sha256`) tells
which of our files are there already; the same sha256 is skipped, another is a conflict.
"""

from __future__ import annotations

import json
import tarfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    OperationalError,
)
from poetry_gitlab_release.pypi.index import IndexConnection

CLOSED_RELEASE = "releases older than"
ATTESTATIONS_REFUSED = "Invalid attestations supplied during upload"
ALREADY_EXISTS = "File already exists"


class AttestationRefusedError(ApiError):
    """The index did not accept a file's attestation."""


class ReleaseClosedError(ApiError):
    """PyPI takes no new files into a release older than 14 days."""


@dataclass(frozen=True)
class RemoteState:
    """The sha256 of each file of one release on the index (empty: no such release), and when
    its first file was uploaded (what the 14-day rule counts from, as near as the API tells)."""

    files: Mapping[str, str]
    first_upload: float | None = None


def remote_state(connection: IndexConnection, name: str, version: str) -> RemoteState:
    urls = connection.urls
    response = connection.get(urls.release_json(name, version))
    if response.status_code == 404:
        return RemoteState({})
    if response.status_code != 200:
        raise OperationalError(
            f"{urls.host}: cannot read {name} {version} from the JSON API "
            f"(HTTP {response.status_code})",
            hint="the index may be down; rerun later (uploads are skipped when already there)",
        )
    try:
        entries = response.json().get("urls") or []
        found = {str(e["filename"]): str(e["digests"]["sha256"]) for e in entries}
        times = [_timestamp(e.get("upload_time_iso_8601")) for e in entries]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise OperationalError(
            f"{urls.host}: the JSON API answer for {name} {version} is not understood"
        ) from None
    known = [t for t in times if t is not None]
    return RemoteState(found, min(known) if known else None)


def _timestamp(value: object) -> float | None:
    from datetime import datetime

    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _reason(response: httpx.Response) -> str:
    """The index's one-line reason: the status line's phrase, else the JSON/HTML body."""
    phrase = response.reason_phrase or ""
    generic = {"Bad Request", "Forbidden", "Unauthorized", "Not Found", ""}
    if phrase not in generic:
        return phrase
    try:
        body: Any = response.json()
        text = str(body.get("message") or body.get("detail") or "").strip()
    except (ValueError, AttributeError):
        text = response.text.strip()
    line = " ".join(text.split())[:300]
    return line or phrase or f"HTTP {response.status_code}"


def form_fields(path: Path) -> list[tuple[str, str]]:
    """The upload form's metadata and digests for `path` (read before anything is sent)."""
    from poetry_gitlab_release.gitlab.uploads import pypi_fields

    try:
        return list(pypi_fields(path))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, tarfile.TarError) as exc:
        raise ConfigError(
            f"cannot read the metadata of {path.name}: {exc}", hint="build the file again"
        ) from None


# How the index says no (warehouse/forklift/legacy.py), each with the fix to give the user.
_REFUSALS: tuple[tuple[Callable[[int, str], bool], type[ApiError], str, str], ...] = (
    (
        lambda status, reason: status == 403 and "expired" in reason,
        AuthenticationError,
        "",
        (
            "the Trusted Publishing token lives 15 minutes: rerun the job (files already "
            "uploaded are skipped)"
        ),
    ),
    (
        lambda status, reason: status in (401, 403),
        AuthenticationError,
        "",
        "check the trusted publisher (project name) or the API token's scope",
    ),
    (
        lambda status, reason: reason.startswith(ATTESTATIONS_REFUSED),
        AttestationRefusedError,
        "'s attestation",
        (
            "the attestation must be signed on https://gitlab.com by the trusted "
            "publisher's project and CI file"
        ),
    ),
    (
        lambda status, reason: CLOSED_RELEASE in reason,
        ReleaseClosedError,
        "",
        "a release older than 14 days takes no new files: publish a new version",
    ),
)


def upload_file(
    connection: IndexConnection,
    path: Path,
    *,
    token: str,
    attestation: Mapping[str, Any] | None,
    fields: list[tuple[str, str]] | None = None,
) -> None:
    """POST one file; raises a one-line error when the index refuses it."""
    from poetry_gitlab_release.gitlab.uploads import MultipartBody

    fields = list(form_fields(path) if fields is None else fields)
    if attestation is not None:
        fields.append(("attestations", json.dumps([attestation], separators=(",", ":"))))
    body = MultipartBody.create(fields, "content", path, path.name)
    urls = connection.urls
    response = connection.post_upload(
        urls.upload,
        token=token,
        content_type=body.content_type,
        content_length=body.content_length(),
        body=body.factory(),
    )
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = _reason(response).replace(token, "********")
    where = f"{urls.host} refused {path.name}"
    if response.is_redirect:
        raise ApiError(
            f"{urls.host} redirected the upload of {path.name} to "
            f"{response.headers.get('Location', '?')}: the token was not sent there",
            status=status,
            hint="give the index's upload URL itself (e.g. https://upload.pypi.org/legacy/)",
        )
    for matches, error, prefix, hint in _REFUSALS:
        if matches(status, reason):
            raise error(f"{where}{prefix}: {reason}", status=status, hint=hint)
    if reason.startswith(ALREADY_EXISTS):
        raise ConflictError(
            f"{where}: {reason}",
            hint="the index never replaces a file: publish a new version",
        )
    if status >= 500:
        raise OperationalError(
            f"{urls.host} failed on {path.name}: HTTP {status} {reason}",
            hint="the index may be down; rerun later (uploaded files are skipped)",
        )
    raise ApiError(f"{where}: {reason}", status=status)
