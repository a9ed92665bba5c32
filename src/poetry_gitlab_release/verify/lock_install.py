"""`gitlab-verify --lock --install`: install exactly the locked, verified files.

Every locked file is downloaded (in parallel) from the index it is locked to and checked
against the lock's sha256, then pip installs the locked versions with `--no-index --no-deps
--find-links` over a directory holding only those files: nothing else can be fetched, and no
dependency is resolved anew (the lock already did that). Refused unless every row passed and
every locked file is one the report checked (a git or path dependency cannot be).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import OperationalError, VerificationError
from poetry_gitlab_release.verify.lockfile import LockedPackage, PackageSource, SourceKind

if TYPE_CHECKING:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.verify.lock_report import LockReport


def install_lock(
    client: GitLabClient,
    report: LockReport,
    packages: Sequence[tuple[LockedPackage, PackageSource]],
    *,
    python: Path,
    pypi_url: str,
    concurrency: int,
    workdir: Path | None = None,
) -> list[str]:
    from poetry_gitlab_release.gitlab.downloads import download_file
    from poetry_gitlab_release.gitlab.simple_index import fetch_project_page
    from poetry_gitlab_release.verify.install import pip_install

    if not report.ok:
        raise OperationalError("refusing to install: not every locked file verified")
    unchecked = [p.name for p, source in packages if source.kind is SourceKind.OTHER]
    if unchecked:
        raise OperationalError(
            f"refusing to install: {', '.join(unchecked)} come from sources with no signature "
            "or provenance to check (git, path, url or another index); use poetry install"
        )
    staging = Path(tempfile.mkdtemp(prefix=".verified-lock-", dir=workdir))
    try:

        def fetch(item: tuple[LockedPackage, PackageSource]) -> None:
            package, source = item
            simple = source.simple_url or f"{pypi_url.rstrip('/')}/simple"
            listed = {f.name: f for f in fetch_project_page(client, simple, package.name)}
            for file in package.files:
                found = listed.get(file.name)
                if found is None or file.sha256 is None:
                    raise VerificationError(f"{file.name}: not on {simple}, or no sha256 locked")
                download_file(client, found.url, staging, file.name, expected_sha256=file.sha256)

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            list(pool.map(fetch, packages))
        requirements = sorted(f"{p.name}=={p.version}" for p, _ in packages if p.files)
        pip_install(python, staging, requirements, no_deps=True)
        return requirements
    finally:
        shutil.rmtree(staging, ignore_errors=True)
