"""The `publish` step: signatures first, then packages, so no consumer sees an unsigned release.

1. Plan: look up what the registries already hold (Packages API). For each file:
   - absent                        -> upload
   - present with the same sha256  -> skip ("already published")
   - a package present with another sha256 -> conflict
   - a signature present with another sha256 -> the published signature is downloaded and
     verified against our artifact and the expected signer: if it holds, it stays ("signed
     earlier": a rerun re-signs, and signatures are never byte-identical) and replaces ours in
     dist/, so that dist/ and release.json describe what is published; otherwise conflict.
2. Any conflict stops the release before the first upload: nothing is changed.
3. Upload signature files to the generic registry `<name>/<version>/`, then the wheel and
   sdist to the project's PyPI registry, one at a time, streamed, with retries.

The two halves also run alone (`publish-signatures`, `publish-packages`) for pipelines that
split them into jobs; packages alone go up only when every artifact's signature is already
published, so the order "no unsigned release visible" holds across jobs too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from poetry_gitlab_release.errors import ApiError, ConflictError, VerificationError
from poetry_gitlab_release.files import sha256_file, write_atomic
from poetry_gitlab_release.gitlab.urls import encode_id, generic_file_url, pypi_upload_url
from poetry_gitlab_release.release.artifacts import Artifact

if TYPE_CHECKING:
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.uploads import Progress, RemoteFile

Registry = Literal["generic", "pypi"]
Status = Literal["upload", "present", "signed-earlier", "uploaded", "would-upload"]

# Verifies a published signature file (its bytes) against a local artifact; raises on failure.
RemoteSignatureCheck = Callable[[Artifact, str, bytes], None]
ProgressFactory = Callable[[str, int], "Progress | None"]


@dataclass(frozen=True)
class PublishTarget:
    """Where a release goes: the project, and the generic package's name and version."""

    project: str
    package: str  # PEP 503 name
    version: str


@dataclass(frozen=True)
class FileAction:
    path: Path
    file_name: str
    artifact: str
    registry: Registry
    sha256: str
    size: int
    url: str
    status: Status
    note: str = ""


@dataclass(frozen=True)
class PublishResult:
    files: tuple[FileAction, ...]
    dry_run: bool
    checked: bool  # whether the registries were consulted

    def for_artifact(self, name: str) -> list[FileAction]:
        return [item for item in self.files if item.artifact == name]


def pypi_file_url(api_url: str, project: str, sha256: str, file_name: str) -> str:
    return f"{api_url}/projects/{encode_id(project)}/packages/pypi/files/{sha256}/{file_name}"


def plan_files(
    api_url: str, target: PublishTarget, artifacts: Sequence[Artifact]
) -> list[FileAction]:
    """Every file of the release, signature files first (in upload order), all to upload."""
    signatures: list[FileAction] = []
    packages: list[FileAction] = []
    for artifact in artifacts:
        for path in artifact.signature_files():
            digest = sha256_file(path)
            signatures.append(
                FileAction(
                    path=path,
                    file_name=path.name,
                    artifact=artifact.name,
                    registry="generic",
                    sha256=digest.sha256,
                    size=digest.size,
                    url=generic_file_url(
                        api_url, target.project, target.package, target.version, path.name
                    ),
                    status="upload",
                )
            )
        # The SBOM is not a package: it goes with the signatures, to the generic registry.
        sbom = artifact.kind == "sbom"
        url = (
            generic_file_url(api_url, target.project, target.package, target.version, artifact.name)
            if sbom
            else pypi_file_url(api_url, target.project, artifact.sha256, artifact.name)
        )
        (signatures if sbom else packages).append(
            FileAction(
                path=artifact.path,
                file_name=artifact.name,
                artifact=artifact.name,
                registry="generic" if sbom else "pypi",
                sha256=artifact.sha256,
                size=artifact.size,
                url=url,
                status="upload",
            )
        )
    return signatures + packages


def check_registries(
    client: GitLabClient,
    target: PublishTarget,
    artifacts: Sequence[Artifact],
    actions: Sequence[FileAction],
    check_signature: RemoteSignatureCheck,
) -> list[FileAction]:
    """Mark what is already published; raise ConflictError (before any upload) on a clash."""
    from poetry_gitlab_release.gitlab.uploads import published_by_name
    from poetry_gitlab_release.release.artifacts import ATTESTATION_SUFFIX, BUNDLE_SUFFIX

    # Also every signature name a published check may look at, planned here or not.
    published_signatures = [
        artifact.name + suffix
        for artifact in artifacts
        for suffix in (BUNDLE_SUFFIX, ATTESTATION_SUFFIX)
    ]

    def lookup(registry: str) -> dict[str, RemoteFile]:
        planned = [action.file_name for action in actions if action.registry == registry]
        extra = published_signatures if registry == "generic" else []
        return published_by_name(
            client,
            target.project,
            registry=registry,
            name=target.package,
            version=target.version,
            file_names=list(dict.fromkeys([*planned, *extra])),
        )

    remote = {"generic": lookup("generic"), "pypi": lookup("pypi")}
    by_name = {artifact.name: artifact for artifact in artifacts}
    conflicts: list[str] = []
    checked_signatures: dict[str, str | None] = {}  # artifact -> None (ok) or the problem
    planned: list[FileAction] = []
    for action in actions:
        found = remote[action.registry].get(action.file_name)
        if found is None:
            planned.append(action)
            continue
        if found.sha256 == action.sha256:
            planned.append(replace(action, status="present", note="same sha256"))
            continue
        if action.registry == "pypi":
            conflicts.append(
                f"{action.file_name} is already in the PyPI registry with sha256 "
                f"{found.sha256}, ours is {action.sha256}"
            )
            continue
        artifact = by_name[action.artifact]
        if artifact.name not in checked_signatures:
            checked_signatures[artifact.name] = _published_signature_problem(
                client, target, artifact, remote["generic"], check_signature
            )
        problem = checked_signatures[artifact.name]
        if problem is None:
            planned.append(
                replace(
                    action,
                    status="signed-earlier",
                    note="a published signature of this artifact already verifies",
                )
            )
        else:
            conflicts.append(
                f"{action.file_name} is already in the generic registry with sha256 "
                f"{found.sha256}, ours is {action.sha256}, and the published signature does "
                f"not verify this artifact ({problem})"
            )
    if conflicts:
        raise ConflictError(
            f"{target.package} {target.version} is already published with other content: "
            + "; ".join(conflicts),
            hint="nothing was uploaded; release a new version instead of replacing files",
        )
    return planned


def _published_signature_problem(
    client: GitLabClient,
    target: PublishTarget,
    artifact: Artifact,
    generic: dict[str, RemoteFile],
    check_signature: RemoteSignatureCheck,
) -> str | None:
    from poetry_gitlab_release.gitlab.uploads import download_generic
    from poetry_gitlab_release.release.artifacts import ATTESTATION_SUFFIX, BUNDLE_SUFFIX

    for suffix in (BUNDLE_SUFFIX, ATTESTATION_SUFFIX):
        file_name = artifact.name + suffix
        if file_name not in generic:
            continue
        data = download_generic(client, target.project, target.package, target.version, file_name)
        try:
            check_signature(artifact, file_name, data)
        except VerificationError as exc:
            return str(exc)
        return None
    return "no published bundle or attestation to check"


def _require_published_signatures(target: PublishTarget, actions: Sequence[FileAction]) -> None:
    missing = sorted(
        {
            action.artifact
            for action in actions
            if action.registry == "generic" and action.status == "upload"
        }
    )
    if missing:
        raise VerificationError(
            f"the signatures of {', '.join(missing)} are not in the generic registry "
            f"({target.package}/{target.version}): packages would be published unsigned",
            hint="nothing was uploaded; run --steps publish-signatures first, or publish both",
        )


def upload_files(
    client: GitLabClient,
    target: PublishTarget,
    actions: Sequence[FileAction],
    *,
    progress: ProgressFactory | None = None,
    on_done: Callable[[FileAction], None] | None = None,
) -> list[FileAction]:
    """Upload what is planned, in order (signature files first); returns the final statuses."""
    from poetry_gitlab_release.gitlab.uploads import (
        download_generic,
        published_by_name,
        pypi_fields,
        upload_generic,
        upload_pypi,
    )

    done: list[FileAction] = []
    upload_url = pypi_upload_url(client.connection.api_url, target.project)
    for action in actions:
        if action.status == "signed-earlier":
            # The registry keeps the earlier signature; make dist/ (and release.json) agree.
            data = download_generic(
                client, target.project, target.package, target.version, action.file_name
            )
            write_atomic(action.path, data)
            action = replace(action, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
        if action.status != "upload":
            done.append(action)
            if on_done is not None:
                on_done(action)
            continue
        bar = progress(action.file_name, action.size) if progress is not None else None
        if action.registry == "generic":
            upload_generic(
                client,
                target.project,
                target.package,
                target.version,
                action.path,
                action.file_name,
                bar,
            )
            result = replace(action, status="uploaded")
        else:
            try:
                upload_pypi(client, upload_url, action.path, pypi_fields(action.path), bar)
                result = replace(action, status="uploaded")
            except ApiError as exc:
                # A retried POST whose first attempt did land: GitLab says "already taken".
                if exc.status != 400 or "already been taken" not in exc.message:
                    raise
                present = published_by_name(
                    client,
                    target.project,
                    registry="pypi",
                    name=target.package,
                    version=target.version,
                    file_names=[action.file_name],
                )
                found = present.get(action.file_name)
                if found is None or found.sha256 != action.sha256:
                    raise ConflictError(
                        f"{action.file_name} appeared in the PyPI registry with other content "
                        "while publishing"
                    ) from None
                result = replace(action, status="present", note="same sha256")
        done.append(result)
        if on_done is not None:
            on_done(result)
    return done


def publish_release(
    client: GitLabClient | None,
    target: PublishTarget,
    artifacts: Sequence[Artifact],
    *,
    api_url: str,
    check_signature: RemoteSignatureCheck,
    dry_run: bool = False,
    registries: frozenset[Registry] = frozenset({"generic", "pypi"}),
    progress: ProgressFactory | None = None,
    on_done: Callable[[FileAction], None] | None = None,
) -> PublishResult:
    """Plan, check the registries (when a client is given), then upload unless dry_run.

    `registries` selects the half to publish: "generic" (signatures), "pypi" (packages) or both.
    Only a dry run may go without a client (no token): it then lists every file as to upload.
    """
    if client is None and not dry_run:
        raise AssertionError("publishing needs a client")
    actions = plan_files(api_url, target, artifacts)
    checked = client is not None
    if client is not None:
        actions = check_registries(client, target, artifacts, actions, check_signature)
        if "generic" not in registries:
            _require_published_signatures(target, actions)
    actions = [action for action in actions if action.registry in registries]
    if dry_run:
        final = [
            replace(action, status="would-upload") if action.status == "upload" else action
            for action in actions
        ]
        return PublishResult(tuple(final), dry_run=True, checked=checked)
    assert client is not None
    final = upload_files(client, target, actions, progress=progress, on_done=on_done)
    return PublishResult(tuple(final), dry_run=False, checked=True)
