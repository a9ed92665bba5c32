"""The release's signed CycloneDX SBOM, checked like a package file (a row of its own)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.files import write_atomic
from poetry_gitlab_release.signing.check import verify_file
from poetry_gitlab_release.signing.results import FileResult, Verdict
from poetry_gitlab_release.verify.registry import fetch_registry_material

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.signing.claims import ClaimPolicy
    from poetry_gitlab_release.signing.identity import ExpectedIdentity

# The SBOM gitlab-release publishes beside the signatures (its release/sbom.py).
SBOM_SUFFIX = ".cdx.json"
SBOM_MAX_BYTES = 16 << 20


def verify_published_sbom(
    client: GitLabClient,
    settings: Settings,
    project: str,
    package: str,
    version: str,
    *,
    dest: Path,
    verifier: Verifier,
    expected: ExpectedIdentity,
    online_log: bool,
    claims: ClaimPolicy | None = None,
) -> FileResult | None:
    """The release's CycloneDX SBOM (#16), a row of its own; None when none was published.

    poetry-gitlab-release publishes `<name>-<version>.cdx.json` and its signature beside the
    other signatures in the generic registry; it is verified like a package file.
    """
    from poetry_gitlab_release.gitlab.downloads import fetch_small_file
    from poetry_gitlab_release.gitlab.urls import generic_file_url

    name = f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}{SBOM_SUFFIX}"
    url = generic_file_url(settings.api_url, project, package, version, name)
    content = fetch_small_file(client, url, name, max_bytes=SBOM_MAX_BYTES)
    if content is None:
        return None
    material = fetch_registry_material(
        client, settings, project, package, version, name, online_log=online_log
    )
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / name
    write_atomic(path, content)  # only once its material is in hand: a failed fetch leaves none
    result = verify_file(
        verifier,
        name=name,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        path=path,
        material=material,
        expected=expected,
        online_log=online_log,
        claims=claims,
    )
    if result.verdict is Verdict.UNSIGNED:
        result = replace(result, reason=f"no {name}.sigstore.json in the generic registry")
    return result
