"""`gitlab-verify --lock`: every file of every locked package, in parallel, one row per file.

- A package from a GitLab PyPI registry must be signed: each locked file's sha256 (from the
  lock, the hash Poetry enforces at install time) must match the registry's index, and its
  signature in the project's generic registry must verify for that sha256, against the
  signer derived from the project (path, tag `v{version}`), the project's immutable ids, the
  claim policy, and the pinned signer.
- A package from PyPI: its PEP 740 provenance (Integrity API) must verify where it exists;
  "no provenance" is reported, never silently passed over.
- Anything else (git, path, url, another index): "not checked", said so.

Network work runs in a thread pool of `concurrency` workers; each project and each index page
is fetched once however many files need it. Nothing is downloaded: a signature is verified
against the lock's sha256, so memory stays flat in the number and size of files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from poetry_gitlab_release.errors import GitlabReleaseError
from poetry_gitlab_release.signing.claims import ClaimPolicy
from poetry_gitlab_release.verify.lock_report import LockReport, LockRow, RowStatus
from poetry_gitlab_release.verify.lockfile import (
    LockedFile,
    LockedPackage,
    PackageSource,
    SourceKind,
)
from poetry_gitlab_release.verify.pins import (
    Pin,
    PinStatus,
    PinStore,
    Signer,
    claim_policy_with_ids,
    normalize,
    observed_gitlab_pin,
)
from poetry_gitlab_release.verify.registry import ProjectFacts

if TYPE_CHECKING:
    from sigstore.verify import Verifier

    from poetry_gitlab_release.gitlab.simple_index import IndexFile
    from poetry_gitlab_release.signing.identity import ExpectedIdentity
    from poetry_gitlab_release.signing.material import SignatureMaterial

T = TypeVar("T")


class LockBackend(Protocol):
    """What the lock flow asks the outside world; a registry client or a test double."""

    def project(self, ref: str) -> ProjectFacts: ...

    def owning_project(self, group: str, name: str, version: str) -> str: ...

    def index(self, simple_url: str, name: str) -> list[IndexFile]: ...

    def material(
        self, project: str, name: str, version: str, filename: str
    ) -> SignatureMaterial | None: ...

    def provenance(self, name: str, version: str, filename: str) -> Any | None: ...


IdentityFor = Callable[[LockedPackage, ProjectFacts], "ExpectedIdentity"]


@dataclass(frozen=True)
class LockOptions:
    identity_for: IdentityFor
    claims: ClaimPolicy = field(default_factory=ClaimPolicy)
    online_log: bool = True
    concurrency: int = 8
    accept_signer_change: bool = False


class _Once:
    """Compute each key once, even when several threads ask at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._values: dict[Hashable, tuple[bool, Any]] = {}

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                try:
                    self._values[key] = (True, compute())
                except GitlabReleaseError as exc:
                    self._values[key] = (False, exc)
            ok, value = self._values[key]
        if not ok:
            raise value
        result: T = value
        return result


def verify_lock(
    packages: Sequence[tuple[LockedPackage, PackageSource]],
    *,
    backend: LockBackend,
    verifier: Verifier,
    options: LockOptions,
    pins: PinStore | None = None,
    lock_file: str = "poetry.lock",
    provenance_verifier: Callable[[], Verifier] | None = None,
) -> LockReport:
    """Every file of every package, one row each. `verifier` checks GitLab signatures;
    `provenance_verifier` makes (once, when a PyPI file has provenance) the verifier for PEP 740
    provenance, which chains to the Sigstore instance PyPI uses [default: `verifier`]."""
    jobs: list[tuple[LockedPackage, PackageSource, LockedFile]] = [
        (package, source, file) for package, source in packages for file in package.files
    ]
    # A package the lock gives no file for (git, path and url dependencies; an index entry
    # locked without hashes) still gets its row: nothing in the lock goes unreported.
    no_files = [_no_files_row(package, source) for package, source in packages if not package.files]

    context = _LockRun(
        backend, verifier, provenance_verifier or (lambda: verifier), options, pins, _Once()
    )

    def run(job: tuple[LockedPackage, PackageSource, LockedFile]) -> LockRow:
        package, source, file = job
        try:
            return _verify_file(context, package, source, file)
        except GitlabReleaseError as exc:
            return _row(package, source, file, RowStatus.FAILED, exc.message)

    workers = max(1, min(options.concurrency, len(jobs) or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gitlab-verify") as pool:
        rows = list(pool.map(run, jobs))
    rows = _apply_pins(rows + no_files, pins, options.accept_signer_change)
    written = pins.save() if pins is not None else False
    return LockReport(
        lock_file=lock_file,
        rows=tuple(rows),
        pins_file=None if pins is None else str(pins.path),
        pins_written=written,
    )


def _no_files_row(package: LockedPackage, source: PackageSource) -> LockRow:
    if source.kind is SourceKind.OTHER:
        status, reason = RowStatus.NOT_CHECKED, "no signature scheme for it (no file is locked)"
    else:  # an index package must name its files, or there is nothing to verify
        status, reason = RowStatus.FAILED, "the lock lists no files for it"
    return LockRow(package.name, package.version, "-", source.label, status, reason)


def _row(
    package: LockedPackage,
    source: PackageSource,
    file: LockedFile,
    status: RowStatus,
    reason: str | None = None,
    **values: Any,
) -> LockRow:
    return LockRow(
        package=package.name,
        version=package.version,
        file=file.name,
        source=source.label,
        status=status,
        reason=reason,
        sha256=file.sha256,
        **values,
    )


@dataclass(frozen=True)
class _LockRun:
    """What every file's check shares: the outside world, the policy, the pins, the cache."""

    backend: LockBackend
    verifier: Verifier
    provenance_verifier: Callable[[], Verifier]
    options: LockOptions
    pins: PinStore | None
    once: _Once


def _verify_file(
    run: _LockRun, package: LockedPackage, source: PackageSource, file: LockedFile
) -> LockRow:
    if source.kind is SourceKind.OTHER:
        return _row(package, source, file, RowStatus.NOT_CHECKED, "no signature scheme for it")
    if source.kind is SourceKind.OTHER_GITLAB:
        return _row(
            package,
            source,
            file,
            RowStatus.FAILED,
            "a GitLab registry on another host than --host: its signatures cannot be fetched "
            "with this GitLab's credentials",
        )
    if file.sha256 is None:
        return _row(package, source, file, RowStatus.FAILED, "the lock gives no sha256 for it")
    if source.kind is SourceKind.PYPI:
        return _pypi_file(run, package, source, file)
    return _gitlab_file(run, package, source, file)


def _pypi_file(
    run: _LockRun, package: LockedPackage, source: PackageSource, file: LockedFile
) -> LockRow:
    from poetry_gitlab_release.verify.provenance import verify_provenance

    assert file.sha256 is not None
    provenance = run.backend.provenance(package.name, package.version, file.name)
    if provenance is None:
        return _row(
            package,
            source,
            file,
            RowStatus.NO_PROVENANCE,
            "PyPI has no PEP 740 provenance for this file",
            check="provenance",
        )
    verifier = run.once.get(("provenance verifier",), run.provenance_verifier)
    checked = verify_provenance(verifier, provenance, filename=file.name, sha256=file.sha256)
    return _row(
        package,
        source,
        file,
        RowStatus.VERIFIED if checked.ok else RowStatus.FAILED,
        checked.reason,
        check="provenance",
        identity=checked.identity,
        log_index=checked.log_index,
        publishers=checked.publishers,
    )


def _gitlab_file(
    run: _LockRun, package: LockedPackage, source: PackageSource, file: LockedFile
) -> LockRow:
    from poetry_gitlab_release.signing.check import verify_file

    assert file.sha256 is not None and source.simple_url is not None
    backend, once, options, pins = run.backend, run.once, run.options, run.pins
    project_ref = source.project
    if project_ref is None:
        assert source.group is not None
        group = source.group
        project_ref = once.get(
            ("owner", group, normalize(package.name), package.version),
            lambda: backend.owning_project(group, package.name, package.version),
        )
    facts = once.get(("project", project_ref), lambda: backend.project(project_ref))
    simple_url = source.simple_url
    index = once.get(
        ("index", simple_url, normalize(package.name)),
        lambda: {item.name: item for item in backend.index(simple_url, package.name)},
    )
    listed = index.get(file.name)
    if listed is None:
        return _row(
            package,
            source,
            file,
            RowStatus.FAILED,
            "the registry's index does not list this file",
            check="signature",
            project_id=facts.id,
        )
    if listed.sha256 is not None and listed.sha256.lower() != file.sha256:
        return _row(
            package,
            source,
            file,
            RowStatus.FAILED,
            f"the lock's sha256 {file.sha256[:12]}... differs from the registry's "
            f"{listed.sha256.lower()[:12]}...: the locked file is not the published one",
            check="signature",
            project_id=facts.id,
        )
    material = backend.material(facts.id, normalize(package.name), package.version, file.name)
    expected = options.identity_for(package, facts)
    policy = _claim_policy(options, facts, pins.get(package.name) if pins else None)
    result = verify_file(
        run.verifier,
        name=file.name,
        sha256=file.sha256,
        size=None,
        path=None,
        material=material,
        expected=expected,
        online_log=options.online_log,
        claims=policy,
    )
    status = {
        "verified": RowStatus.VERIFIED,
        "unsigned": RowStatus.UNSIGNED,
    }.get(result.verdict.value, RowStatus.FAILED)
    reason = result.reason
    if status is RowStatus.UNSIGNED:
        reason = (
            f"no {file.name}.sigstore.json or .publish.attestation in the generic registry "
            f"of project {facts.path} at {normalize(package.name)}/{package.version}"
        )
    return _row(
        package,
        source,
        file,
        status,
        reason,
        check="signature",
        identity=result.identity,
        project_id=facts.id,
        log_index=result.log_index,
        claims=result.claims,
    )


def _claim_policy(options: LockOptions, facts: ProjectFacts, pinned: Pin | None) -> ClaimPolicy:
    return claim_policy_with_ids(
        options.claims,
        pinned,
        project_id=facts.id,
        namespace_id=facts.namespace_id,
        where=facts.path,
        accept_change=options.accept_signer_change,
    )


def _apply_pins(rows: list[LockRow], pins: PinStore | None, accept_change: bool) -> list[LockRow]:
    """Per package, compare what verified with its pin; record first uses and accepted changes.

    Only a package whose rows all passed is pinned or compared: a failure is reported as
    itself, and never becomes the trusted signer.
    """
    if pins is None:
        return rows
    by_package: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        if row.check != "-":
            by_package.setdefault(normalize(row.package), []).append(index)
    result = list(rows)
    for indexes in by_package.values():
        members = [rows[i] for i in indexes]
        if not all(row.status in (RowStatus.VERIFIED, RowStatus.NO_PROVENANCE) for row in members):
            continue
        observed = _observed(members)
        check = pins.check(observed, accept_change=accept_change)
        for i in indexes:
            if check.status is PinStatus.CHANGED:
                result[i] = replace(
                    rows[i],
                    status=RowStatus.FAILED,
                    reason=check.message(pins.path),
                    pin=check.status.value,
                )
            else:
                result[i] = replace(rows[i], pin=check.status.value)
    return result


def _observed(rows: Sequence[LockRow]) -> Pin:
    name = rows[0].package
    if rows[0].check == "signature":
        return observed_gitlab_pin(name, [row.claims for row in rows])
    publishers: list[Signer] = []
    for row in rows:
        for publisher in row.publishers:
            if publisher not in publishers:
                publishers.append(publisher)
    return Pin(name=name, signed=bool(publishers), signers=tuple(publishers))
