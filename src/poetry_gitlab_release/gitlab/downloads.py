"""Streamed downloads from GitLab's registries.

- Release files go straight to disk in chunks, the sha256 computed on the way, the size bounded;
  a partial or mismatching file never keeps its final name.
- Signature material (bundles, attestations, .sig/.crt) is small: read into memory, bounded.
Credentials follow the client's rules: only to GitLab's own origin, never across a redirect.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import NotFoundError, VerificationError
from poetry_gitlab_release.files import CHUNK_SIZE
from poetry_gitlab_release.gitlab.client import Auth, stream_body
from poetry_gitlab_release.gitlab.simple_index import check_file_name

if TYPE_CHECKING:
    from poetry_gitlab_release.gitlab.client import GitLabClient

# The largest file GitLab's registries accept by default: generic packages 5 GiB
# (generic_packages_max_file_size); PyPI files 3 GiB on self-managed (plan limit
# pypi_max_file_size = 3221225472), 5 GB on GitLab.com. The larger bounds every download.
MAX_FILE_BYTES = 5 << 30
MAX_SIGNATURE_BYTES = 1 << 20  # a bundle is a few KiB


@dataclass(frozen=True)
class Download:
    path: Path
    sha256: str
    size: int


def download_file(
    client: GitLabClient,
    url: str,
    dest: Path,
    name: str,
    *,
    expected_sha256: str | None,
    max_bytes: int = MAX_FILE_BYTES,
    auth: Auth = Auth.BASIC,
) -> Download:
    """Download `url` to `dest/name`, checking the sha256 the index announced.

    Raises VerificationError on a size or digest mismatch (the file is removed).
    """
    check_file_name(name)
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    partial = dest / f".{name}.part"
    digest = hashlib.sha256()
    size = 0
    response = client.request("GET", url, auth=auth, stream=True, expected=(200,))
    try:
        with partial.open("wb") as handle:
            for chunk in stream_body(response, url, CHUNK_SIZE):
                size += len(chunk)
                if size > max_bytes:
                    raise VerificationError(
                        f"{name}: the download is larger than the limit of {max_bytes} bytes"
                    )
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        response.close()
    actual = digest.hexdigest()
    if expected_sha256 is not None and actual != expected_sha256.lower():
        partial.unlink(missing_ok=True)
        raise VerificationError(
            f"{name}: sha256 of the download is {actual}, the index says {expected_sha256}"
        )
    os.replace(partial, target)
    return Download(target, actual, size)


def fetch_small_file(
    client: GitLabClient, url: str, what: str, *, max_bytes: int = MAX_SIGNATURE_BYTES
) -> bytes | None:
    """GET a small file from the generic registry; None when GitLab has no such file."""
    try:
        response = client.request("GET", url, auth=Auth.REST, stream=True, expected=(200,))
    except NotFoundError:
        return None
    try:
        chunks: list[bytes] = []
        size = 0
        for chunk in stream_body(response, url):
            size += len(chunk)
            if size > max_bytes:
                raise VerificationError(f"{what} is larger than {max_bytes} bytes")
            chunks.append(chunk)
    finally:
        response.close()
    return b"".join(chunks)
