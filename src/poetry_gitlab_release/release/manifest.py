"""`dist/release.json`: what was released, machine-readable.

Built from what is in the dist directory (artifacts, their signature files, the Rekor log
indexes and signer identity in the bundles) plus the outcome of this run's publish step, so it
is right whichever steps ran in which job. It never holds a token: only names, digests, URLs
and certificate facts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poetry_gitlab_release.files import write_atomic
from poetry_gitlab_release.release.artifacts import (
    ATTESTATION_SUFFIX,
    BUNDLE_SUFFIX,
    MANIFEST_NAME,
    Artifact,
)
from poetry_gitlab_release.release.publish import PublishResult, PublishTarget, pypi_file_url
from poetry_gitlab_release.signing.identity import ExpectedIdentity

MANIFEST_VERSION = 1


@dataclass(frozen=True)
class ManifestResult:
    path: Path
    document: dict[str, Any]


@dataclass(frozen=True)
class ReleaseFacts:
    package: str
    version: str
    version_source: str
    project: str | None  # path (or id) of the GitLab project
    api_url: str | None
    pypi_simple_url: str | None
    steps: tuple[str, ...]


def signer_facts(artifacts: Sequence[Artifact]) -> dict[str, Any]:
    """Identity, issuer, repository, ref and commit from the first bundle's certificate, and
    every GitLab claim Fulcio copied into it (`claims`: project and namespace ids, runner
    environment, pipeline source, environment, ...), what a consumer pins and checks."""
    from poetry_gitlab_release.signing.claims import read_claims
    from poetry_gitlab_release.signing.identity import certificate_facts

    for artifact in artifacts:
        path = artifact.sidecar(BUNDLE_SUFFIX)
        if not path.is_file():
            continue
        from sigstore.errors import Error as SigstoreError
        from sigstore.models import Bundle

        try:
            certificate = Bundle.from_json(path.read_bytes()).signing_certificate
            facts = certificate_facts(certificate)
        except (SigstoreError, ValueError, OSError):
            # An unreadable bundle is the verify step's to report, not the manifest's.
            return {}
        return {
            "identity": facts.identity,
            "issuer": facts.issuer,
            "source_repository": facts.repository_uri,
            "ref": facts.ref,
            "commit": facts.commit,
            "job_url": facts.job_url,
            "claims": read_claims(certificate).as_dict(),
        }
    return {}


def build_manifest(
    facts: ReleaseFacts,
    artifacts: Sequence[Artifact],
    *,
    expected: ExpectedIdentity | None = None,
    publish: PublishResult | None = None,
    targets: Sequence[str] = ("gitlab",),
    pypi: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from poetry_gitlab_release.gitlab.urls import generic_file_url

    signer = signer_facts(artifacts)
    statuses = {item.file_name: item for item in publish.files} if publish is not None else {}
    target = (
        PublishTarget(facts.project, facts.package, facts.version)
        if facts.project is not None and facts.api_url is not None
        else None
    )

    def url_of(file_name: str, sha256: str, registry: str) -> str | None:
        if target is None or facts.api_url is None:
            return None
        if registry == "pypi":
            return pypi_file_url(facts.api_url, target.project, sha256, file_name)
        return generic_file_url(
            facts.api_url, target.project, target.package, target.version, file_name
        )

    files: list[dict[str, Any]] = []
    for artifact in artifacts:
        action = statuses.get(artifact.name)
        signatures = []
        for path in artifact.signature_files():
            signature_action = statuses.get(path.name)
            signatures.append(
                {
                    "file": path.name,
                    "url": url_of(path.name, "", "generic"),
                    "status": signature_action.status if signature_action else None,
                }
            )
        files.append(
            {
                "file": artifact.name,
                "kind": artifact.kind,
                "sha256": artifact.sha256,
                "size": artifact.size,
                "url": url_of(
                    artifact.name,
                    artifact.sha256,
                    "generic" if artifact.kind == "sbom" else "pypi",
                ),
                "status": action.status if action else None,
                "signature_url": url_of(artifact.name + BUNDLE_SUFFIX, "", "generic")
                if artifact.sidecar(BUNDLE_SUFFIX).is_file()
                else None,
                "rekor_log_index": _log_index(artifact.sidecar(BUNDLE_SUFFIX), bundle=True),
                "attestation_rekor_log_index": _log_index(
                    artifact.sidecar(ATTESTATION_SUFFIX), bundle=False
                ),
                "signatures": signatures,
            }
        )
    return {
        "manifest_version": MANIFEST_VERSION,
        "package": facts.package,
        "version": facts.version,
        "version_source": facts.version_source,
        "project": facts.project,
        "steps": list(facts.steps),
        "identity": signer.get("identity"),
        "issuer": signer.get("issuer"),
        "source_repository": signer.get("source_repository"),
        "ref": signer.get("ref"),
        "commit": signer.get("commit"),
        "job_url": signer.get("job_url"),
        "claims": signer.get("claims"),
        "expected": None
        if expected is None
        else {
            "identity": expected.identity,
            "issuer": expected.issuer,
            "source_repository": expected.repository_uri,
            "ref": expected.ref,
        },
        "registries": {
            "pypi_simple": facts.pypi_simple_url,
            "generic": None
            if target is None or facts.api_url is None
            else generic_file_url(
                facts.api_url, target.project, target.package, target.version, ""
            ),
        },
        "dry_run": publish.dry_run if publish is not None else None,
        "files": files,
        # Each target's result (None: not published by this run). GitLab's per-file statuses
        # are the files' `status`; PyPI's are its own (#13).
        "targets": {
            "gitlab": None
            if "gitlab" not in targets or publish is None
            else {
                "dry_run": publish.dry_run,
                "uploaded": sum(1 for item in publish.files if item.status == "uploaded"),
            },
            "pypi": pypi if "pypi" in targets else None,
        },
    }


def write_manifest(dist_dir: Path, document: dict[str, Any]) -> ManifestResult:
    path = dist_dir / MANIFEST_NAME
    write_atomic(path, json.dumps(document, indent=2) + "\n")
    return ManifestResult(path, document)


def _log_index(path: Path, *, bundle: bool) -> int | None:
    from poetry_gitlab_release.signing.material import attestation_log_index, bundle_log_index

    if not path.is_file():
        return None
    try:
        document = json.loads(path.read_bytes())
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    return bundle_log_index(document) if bundle else attestation_log_index(document)
