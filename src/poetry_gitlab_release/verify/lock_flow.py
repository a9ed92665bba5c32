"""`gitlab-verify --lock` wired to the world: read poetry.lock, classify each package's source,
verify every file through GitLab and the PyPI Integrity API, then optionally install exactly
the verified set. The per-file logic is verify/lock.py's; this module only connects it."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.verify.report import Progress

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.signing.claims import ClaimPolicy
    from poetry_gitlab_release.signing.identity import ExpectedIdentity
    from poetry_gitlab_release.verify.expected import IdentityOptions
    from poetry_gitlab_release.verify.lock_report import LockReport
    from poetry_gitlab_release.verify.lockfile import LockedPackage
    from poetry_gitlab_release.verify.pins import PinStore
    from poetry_gitlab_release.verify.registry import ProjectFacts


@dataclass(frozen=True)
class LockRequest:
    lock_path: Path
    identity_options: IdentityOptions
    claims: ClaimPolicy
    pins: PinStore | None
    pypi_url: str
    trusted_root: Path | None = None
    pypi_trust_config: Path | None = None  # the Sigstore instance PyPI's provenance chains to
    offline: bool = False
    concurrency: int = 8
    accept_signer_change: bool = False
    install_into: Path | None = None  # --install: the interpreter to install the verified set into


def run_lock(
    settings: Settings,
    request: LockRequest,
    *,
    progress: Progress = lambda _: None,
    on_installed: Callable[[list[str]], None] = lambda _: None,
) -> LockReport:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.pypi.index import IndexConnection, IndexURLs
    from poetry_gitlab_release.signing.trust import make_verifier
    from poetry_gitlab_release.tls import other_hosts_context
    from poetry_gitlab_release.verify.expected import signer_from_options
    from poetry_gitlab_release.verify.lock import LockOptions, verify_lock
    from poetry_gitlab_release.verify.lock_backend import RegistryBackend
    from poetry_gitlab_release.verify.lockfile import classify, read_lock

    packages = [
        (package, classify(package, api_url=settings.api_url, pypi_url=request.pypi_url))
        for package in read_lock(request.lock_path)
    ]

    def identity_for(package: LockedPackage, facts: ProjectFacts) -> ExpectedIdentity:
        return signer_from_options(
            request.identity_options,
            server_url=settings.server_url,
            project_path=facts.path,
            version=package.version,
        )

    options = LockOptions(
        identity_for=identity_for,
        claims=request.claims,
        online_log=not request.offline,
        concurrency=request.concurrency,
        accept_signer_change=request.accept_signer_change,
    )
    verifier = make_verifier(settings.trust_config, request.trusted_root, request.offline)
    # pypi.org's attestations chain to Sigstore production whatever signs the GitLab side (a
    # self-managed GitLab may run its own Sigstore), unless --pypi-trust-config says otherwise.
    provenance_verifier: Callable[[], Verifier] | None = None
    if (settings.trust_config, request.trusted_root, request.pypi_trust_config) != (None,) * 3:
        provenance_verifier = functools.partial(
            make_verifier, request.pypi_trust_config, None, request.offline
        )
    progress(f"verifying {sum(len(p.files) for p, _ in packages)} files of {request.lock_path}")
    pypi = IndexURLs.for_reading(request.pypi_url)
    with (
        GitLabClient(Connection.from_settings(settings)) as client,
        IndexConnection(pypi, verify=other_hosts_context(settings.ca_file)) as index,
    ):
        backend = RegistryBackend(client, index, settings, online_log=not request.offline)
        report = verify_lock(
            packages,
            backend=backend,
            verifier=verifier,
            options=options,
            pins=request.pins,
            lock_file=str(request.lock_path),
            provenance_verifier=provenance_verifier,
        )
        if report.ok and request.install_into is not None:
            from poetry_gitlab_release.verify.lock_install import install_lock

            installed = install_lock(
                client,
                report,
                packages,
                python=request.install_into,
                pypi_url=request.pypi_url,
                concurrency=request.concurrency,
            )
            on_installed(installed)
            report = replace(report, installed=tuple(installed))
    return report
