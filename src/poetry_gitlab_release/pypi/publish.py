"""Publish one release's files to a PyPI-compatible index, idempotently.

1. With Trusted Publishing every file needs its `.publish.attestation` (checked first, before
   anything is sent); with an API token no attestation is sent (PyPI takes attestations only
   from a trusted publisher).
2. The JSON API says what is there: the same sha256 is skipped; another file under one of our
   names stops everything before any upload (ConflictError), so nothing is half-published by
   a conflict; new files into a release older than 14 days stop too (ReleaseClosedError).
3. Only if something is left to upload is the credential obtained: the ID token is exchanged
   once, the upload token is used for every file, then burned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poetry_gitlab_release.errors import ConflictError
from poetry_gitlab_release.files import sha256_file
from poetry_gitlab_release.pypi.attestations import load_attestation
from poetry_gitlab_release.pypi.index import IndexConnection
from poetry_gitlab_release.pypi.trusted_publishing import burn, resolve_credential
from poetry_gitlab_release.pypi.upload import (
    ReleaseClosedError,
    form_fields,
    remote_state,
    upload_file,
)

MAXIMUM_RELEASE_AGE_DAYS = 14


@dataclass(frozen=True)
class IndexFileResult:
    name: str
    sha256: str
    status: str  # "uploaded" | "skipped" | "would-upload"
    attestation: bool
    provenance_url: str | None


@dataclass(frozen=True)
class IndexResult:
    index: str
    upload_url: str
    credential: str  # "trusted-publishing" | "api-token" | "none"
    files: tuple[IndexFileResult, ...]

    @property
    def uploaded(self) -> int:
        return sum(1 for f in self.files if f.status == "uploaded")

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "upload_url": self.upload_url,
            "credential": self.credential,
            "files": [
                {
                    "name": f.name,
                    "sha256": f.sha256,
                    "status": f.status,
                    "attestation": f.attestation,
                    "provenance_url": f.provenance_url,
                }
                for f in self.files
            ],
        }


def publish_release(
    connection: IndexConnection,
    *,
    name: str,
    version: str,
    files: Sequence[Path],
    id_token: str | None,
    api_token: str | None,
    in_ci: bool,
    dry_run: bool = False,
    on_file: Callable[[IndexFileResult], None] | None = None,
    now: float | None = None,
) -> IndexResult:
    urls = connection.urls
    trusted = bool(id_token)
    attestations = {path.name: load_attestation(path) for path in files} if trusted else {}
    digests = {path.name: sha256_file(path).sha256 for path in files}
    remote = remote_state(connection, name, version)
    conflicts = [
        f"{file} (there sha256 {remote.files[file][:12]}..., ours {digests[file][:12]}...)"
        for file in digests
        if file in remote.files and remote.files[file] != digests[file]
    ]
    if conflicts:
        raise ConflictError(
            f"{urls.host} already has other files under our names: {', '.join(conflicts)}; "
            "nothing was uploaded",
            hint="the index never replaces a file: publish a new version",
        )
    pending = [path for path in files if path.name not in remote.files]
    current = time.time() if now is None else now
    age_limit = MAXIMUM_RELEASE_AGE_DAYS * 86400
    if pending and remote.first_upload is not None and current - remote.first_upload > age_limit:
        raise ReleaseClosedError(
            f"{urls.host} takes no new files into {name} {version}: the release is older than "
            f"{MAXIMUM_RELEASE_AGE_DAYS} days ({', '.join(p.name for p in pending)} not uploaded)",
            status=400,
            hint="publish a new version",
        )

    def result(path: Path, status: str) -> IndexFileResult:
        attested = path.name in attestations
        done = IndexFileResult(
            path.name,
            digests[path.name],
            status,
            attested,
            urls.provenance(name, version, path.name)
            if attested and status in ("uploaded", "would-upload")
            else None,
        )
        if on_file is not None:
            on_file(done)
        return done

    results = [result(path, "skipped") for path in files if path.name in remote.files]
    credential_kind = "trusted-publishing" if trusted else ("api-token" if api_token else "none")
    if dry_run or not pending:
        results += [result(path, "would-upload") for path in pending]
        return IndexResult(urls.host, urls.upload, credential_kind, tuple(results))
    forms = {path.name: form_fields(path) for path in pending}  # every file readable first
    credential = resolve_credential(
        connection, id_token=id_token, api_token=api_token, project=name, in_ci=in_ci
    )
    try:
        for path in pending:
            upload_file(
                connection,
                path,
                token=credential.value,
                attestation=attestations.get(path.name),
                fields=forms[path.name],
            )
            results.append(result(path, "uploaded"))
    finally:
        burn(connection, credential)
    order = {path.name: index for index, path in enumerate(files)}
    results.sort(key=lambda item: order[item.name])
    return IndexResult(urls.host, urls.upload, credential.kind, tuple(results))
