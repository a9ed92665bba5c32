"""The registry flow: resolve -> download (sha256 checked) -> fetch signature material ->
verify each file against the expected identity, claims and pin -> report.

`name==version` (or `name`, the latest final release) comes from a project's or a group's PyPI
simple index; signature material from the owning project's generic registry. Local files are
verify/local.py's; the whole poetry.lock is verify/lock.py's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import VerificationError
from poetry_gitlab_release.gitlab.simple_index import normalize_name
from poetry_gitlab_release.signing.check import verify_file
from poetry_gitlab_release.signing.claims import ClaimPolicy
from poetry_gitlab_release.signing.results import FileResult, Verdict
from poetry_gitlab_release.verify.expected import IdentityOptions, Requirement, signer_from_options
from poetry_gitlab_release.verify.registry import (
    RegistryTarget,
    fetch_registry_material,
    resolve_target,
)
from poetry_gitlab_release.verify.report import Progress, Report
from poetry_gitlab_release.verify.sbom_check import verify_published_sbom

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.config.settings import Settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.verify.pins import Pin, PinStore


def verify_registry(
    settings: Settings,
    requirement: Requirement,
    *,
    dest: Path,
    identity_options: IdentityOptions,
    make_verifier: Callable[[], Verifier],
    online_log: bool,
    group_index: bool = False,
    progress: Progress = lambda _: None,
    client_factory: Callable[[Connection], GitLabClient] | None = None,
    claims: ClaimPolicy | None = None,
    pins: PinStore | None = None,
    accept_signer_change: bool = False,
) -> Report:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.gitlab.downloads import download_file
    from poetry_gitlab_release.gitlab.simple_index import fetch_project_page, select_release

    factory = client_factory or GitLabClient
    with factory(Connection.from_settings(settings)) as client:
        target = resolve_target(client, settings, requirement, group_index=group_index)
        progress(f"reading {target.simple_url}/{normalize_name(requirement.name)}/")
        files = fetch_project_page(client, target.simple_url, requirement.name)
        version_text, release = select_release(files, requirement.name, requirement.version)
        expected = signer_from_options(
            identity_options,
            server_url=settings.server_url,
            project_path=target.project_path,
            version=version_text,
        )
        policy = registry_claim_policy(
            claims or ClaimPolicy(),
            target,
            pins.get(requirement.name) if pins is not None else None,
            accept_signer_change=accept_signer_change,
        )
        verifier = make_verifier()
        check = functools.partial(
            verify_file, verifier, expected=expected, online_log=online_log, claims=policy
        )
        package = normalize_name(requirement.name)
        results: list[FileResult] = []
        downloaded: list[Path] = []
        try:
            for item in release:
                name = item.name
                if item.file.sha256 is None:
                    results.append(
                        FileResult(name, Verdict.FAILED, reason="the index gives no sha256 for it")
                    )
                    continue
                progress(f"downloading {name}")
                try:
                    download = download_file(
                        client, item.file.url, dest, name, expected_sha256=item.file.sha256
                    )
                except VerificationError as exc:
                    results.append(
                        FileResult(name, Verdict.FAILED, reason=_strip_name(str(exc), name))
                    )
                    continue
                downloaded.append(download.path)
                material = fetch_registry_material(
                    client,
                    settings,
                    target.signature_project,
                    package,
                    version_text,
                    name,
                    online_log=online_log,
                )
                sha256, size, path = download.sha256, download.size, download.path
                result = check(name=name, sha256=sha256, size=size, path=path, material=material)
                if result.verdict is Verdict.UNSIGNED:
                    detached = ", .sig/.crt" if online_log else ""
                    result = replace(
                        result,
                        reason=f"no {name}.sigstore.json, .publish.attestation{detached} in "
                        f"the generic registry at {package}/{version_text}",
                    )
                results.append(result)
            sbom = verify_published_sbom(
                client,
                settings,
                target.signature_project,
                package,
                version_text,
                dest=dest,
                verifier=verifier,
                expected=expected,
                online_log=online_log,
                claims=policy,
            )
            if sbom is not None:
                results.append(sbom)
        except BaseException:
            # Interrupted (network, Ctrl-C): the release was not verified as a whole, so no file
            # this run downloaded stays behind to be installed by mistake.
            for path in downloaded:
                path.unlink(missing_ok=True)
            raise
    pin_status = None
    if pins is not None:
        from poetry_gitlab_release.verify.pins import apply_pin

        checked, pin = apply_pin(
            results, pins, requirement.name, accept_change=accept_signer_change
        )
        results = list(checked)
        pin_status = None if pin is None else pin.status.value
    described = expected.describe()
    if not policy.empty:
        described += f"; {policy.describe()}"
    return Report(
        subject=f"{requirement.name}=={version_text}",
        expected=described,
        source=f"{target.simple_url}/{package}/",
        results=tuple(results),
        dest=dest,
        pin=pin_status,
        pins_file=None if pins is None else str(pins.path),
    )


def registry_claim_policy(
    base: ClaimPolicy,
    target: RegistryTarget,
    pinned: Pin | None,
    *,
    accept_signer_change: bool,
) -> ClaimPolicy:
    from poetry_gitlab_release.verify.pins import claim_policy_with_ids

    return claim_policy_with_ids(
        base,
        pinned,
        project_id=target.project_id,
        namespace_id=target.namespace_id,
        where=target.project_path or target.signature_project,
        accept_change=accept_signer_change,
    )


def _strip_name(message: str, name: str) -> str:
    prefix = f"{name}: "
    return message.removeprefix(prefix)


def without_failed_downloads(report: Report) -> Report:
    """Delete downloaded files that did not verify, so nobody installs them by mistake."""
    results = []
    for result in report.results:
        if not result.ok and result.path is not None:
            result.path.unlink(missing_ok=True)
            result = replace(result, path=None)
        results.append(result)
    return replace(report, results=tuple(results))
