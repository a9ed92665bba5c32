"""The `verify` step: before anything is published, every artifact is checked against the
signer identity GitLab's facts say it must have.

Expected: identity `https://{server}/{project_path}//{ci_config_path}@{ref}`, issuer
`CI_SERVER_URL`, source repository `{issuer}/{project_path}`, ref `refs/tags/<tag>` or
`refs/heads/<branch>`; each can be overridden. For every artifact the bundle must verify
(certificate chain, transparency log, signature over the artifact's sha256, policy); the PEP 740
attestation, when present, must verify and name this file and its sha256; cosign-style
`.sig`/`.crt`, when present, must be the bundle's signature and certificate. The first failure
stops the release, naming the file and the field that does not match.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import ConfigError, VerificationError
from poetry_gitlab_release.release.artifacts import (
    ATTESTATION_SUFFIX,
    BUNDLE_SUFFIX,
    COSIGN_CERTIFICATE_SUFFIX,
    COSIGN_SIGNATURE_SUFFIX,
    Artifact,
)
from poetry_gitlab_release.release.sign import (
    IN_TOTO_PAYLOAD_TYPE,
    PEP740_PREDICATE_TYPE,
    bundle_from_attestation,
    cosign_files,
    hashed,
    log_index_of,
)
from poetry_gitlab_release.signing.identity import ExpectedIdentity, git_ref, gitlab_identity

if TYPE_CHECKING:
    from sigstore.models import Bundle, ClientTrustConfig
    from sigstore.verify import Verifier
    from sigstore.verify.policy import VerificationPolicy

    from poetry_gitlab_release.config.settings import Settings


@dataclass(frozen=True)
class VerifiedArtifact:
    artifact: Artifact
    bundle: Path
    log_index: int | None
    attestation: Path | None
    attestation_log_index: int | None
    signature_files: tuple[Path, ...]


@dataclass(frozen=True)
class VerifyResult:
    expected: ExpectedIdentity
    verified: tuple[VerifiedArtifact, ...]


def expected_identity(
    settings: Settings,
    *,
    source_repository: str | None = None,
    ref: str | None = None,
) -> ExpectedIdentity:
    """The signer we expect, from GitLab CI facts; --identity/--issuer/--ref/... override."""
    issuer = settings.issuer or settings.server_url
    if ref is not None and not ref.startswith("refs/"):
        raise ConfigError(
            f"--expected-ref {ref!r} must be a full ref (refs/tags/... or refs/heads/...)"
        )
    if ref is None and (settings.commit_tag or settings.ref_name):
        ref = git_ref(tag=settings.commit_tag, branch=settings.ref_name)
    identity = settings.identity
    project_path = settings.project_path
    if identity is None:
        if project_path is None:
            raise ConfigError(
                "cannot tell the expected signer identity: the project's path is unknown",
                hint="pass --gitlab-project GROUP/PROJECT (in CI it comes from CI_PROJECT_PATH) "
                "or --identity",
            )
        if ref is None:
            raise ConfigError(
                "cannot tell the expected signer identity: no tag or branch",
                hint="in GitLab CI it comes from CI_COMMIT_TAG/CI_COMMIT_REF_NAME; "
                "else pass --expected-ref refs/tags/vX.Y.Z or --identity",
            )
        identity = gitlab_identity(settings.server_url, project_path, settings.ci_config_path, ref)
    if source_repository is None and project_path is not None:
        source_repository = f"{issuer.rstrip('/')}/{project_path.strip('/')}"
    return ExpectedIdentity(
        issuer=issuer, identity=identity, repository_uri=source_repository, ref=ref
    )


def verify_artifacts(
    artifacts: Sequence[Artifact],
    expected: ExpectedIdentity,
    *,
    trust_config: ClientTrustConfig,
) -> VerifyResult:
    from sigstore.verify import Verifier

    if not artifacts:
        raise VerificationError("there is nothing to verify", hint="run the build step first")
    verifier = Verifier(trusted_root=trust_config.trusted_root)
    policy = expected.to_policy()
    return VerifyResult(
        expected, tuple(verify_artifact(a, expected, verifier, policy) for a in artifacts)
    )


def verify_artifact(
    artifact: Artifact,
    expected: ExpectedIdentity,
    verifier: Verifier,
    policy: VerificationPolicy,
) -> VerifiedArtifact:
    from sigstore.errors import Error as SigstoreError

    bundle_path = artifact.sidecar(BUNDLE_SUFFIX)
    if not bundle_path.is_file():
        raise VerificationError(
            f"{artifact.name}: no signature ({bundle_path.name} is missing)",
            hint="run the sign step first",
        )
    bundle = _read_bundle(bundle_path)
    try:
        verifier.verify_artifact(hashed(artifact), bundle, policy)
    except SigstoreError as exc:
        raise _failure(bundle_path.name, artifact, bundle, expected, exc) from None

    attestation_path = artifact.sidecar(ATTESTATION_SUFFIX)
    attestation_index = None
    if attestation_path.is_file():
        attestation_index = _verify_attestation(
            attestation_path, artifact, expected, verifier, policy
        )
    _check_cosign_files(artifact, bundle)
    return VerifiedArtifact(
        artifact=artifact,
        bundle=bundle_path,
        log_index=log_index_of(json.loads(bundle_path.read_bytes())),
        attestation=attestation_path if attestation_path.is_file() else None,
        attestation_log_index=attestation_index,
        signature_files=tuple(artifact.signature_files()),
    )


def verify_bundle_bytes(
    data: bytes,
    file_name: str,
    artifact: Artifact,
    expected: ExpectedIdentity,
    verifier: Verifier,
    policy: VerificationPolicy,
) -> None:
    """Verify a bundle or PEP 740 attestation held in memory (e.g. one already published)."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    if file_name.endswith(ATTESTATION_SUFFIX):
        _verify_attestation_document(
            _parse_json(data, file_name), file_name, artifact, expected, verifier, policy
        )
        return
    try:
        bundle = Bundle.from_json(data)
    except SigstoreError as exc:
        raise VerificationError(f"{file_name}: not a Sigstore bundle: {exc}") from None
    try:
        verifier.verify_artifact(hashed(artifact), bundle, policy)
    except SigstoreError as exc:
        raise _failure(file_name, artifact, bundle, expected, exc) from None


def _verify_attestation(
    path: Path,
    artifact: Artifact,
    expected: ExpectedIdentity,
    verifier: Verifier,
    policy: VerificationPolicy,
) -> int | None:
    document = _parse_json(path.read_bytes(), path.name)
    return _verify_attestation_document(document, path.name, artifact, expected, verifier, policy)


def _verify_attestation_document(
    document: Any,
    file_name: str,
    artifact: Artifact,
    expected: ExpectedIdentity,
    verifier: Verifier,
    policy: VerificationPolicy,
) -> int | None:
    from sigstore.errors import Error as SigstoreError

    try:
        bundle = bundle_from_attestation(document)
    except (ValueError, SigstoreError) as exc:
        raise VerificationError(f"{file_name}: not a PEP 740 attestation: {exc}") from None
    try:
        payload_type, payload = verifier.verify_dsse(bundle, policy)
    except SigstoreError as exc:
        raise _failure(file_name, artifact, bundle, expected, exc) from None
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(
            f"{file_name}: payload type is {payload_type}, expected {IN_TOTO_PAYLOAD_TYPE}"
        )
    statement = _parse_json(payload, file_name)
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if statement.get("predicateType") != PEP740_PREDICATE_TYPE:
        raise VerificationError(
            f"{file_name}: predicate type is {statement.get('predicateType')}, expected "
            f"{PEP740_PREDICATE_TYPE}"
        )
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise VerificationError(f"{file_name}: the statement must have exactly one subject")
    subject = subjects[0]
    if subject.get("name") != artifact.name:
        raise VerificationError(
            f"{file_name}: subject name is {subject.get('name')}, expected {artifact.name}"
        )
    digest = (subject.get("digest") or {}).get("sha256")
    if digest != artifact.sha256:
        raise VerificationError(
            f"{file_name}: subject sha256 is {digest}, expected {artifact.sha256} "
            f"(the artifact changed after signing)"
        )
    return log_index_of(
        {
            "verificationMaterial": {
                "tlogEntries": document["verification_material"]["transparency_entries"]
            }
        }
    )


def _check_cosign_files(artifact: Artifact, bundle: Bundle) -> None:
    signature_path = artifact.sidecar(COSIGN_SIGNATURE_SUFFIX)
    certificate_path = artifact.sidecar(COSIGN_CERTIFICATE_SUFFIX)
    if not (signature_path.is_file() or certificate_path.is_file()):
        return
    signature, certificate = cosign_files(bundle)
    for path, wanted, what in (
        (signature_path, signature, "signature"),
        (certificate_path, certificate, "certificate"),
    ):
        if not path.is_file():
            raise VerificationError(f"{path.name} is missing beside its counterpart")
        if path.read_text(encoding="ascii", errors="replace").strip() != wanted:
            raise VerificationError(
                f"{path.name}: the {what} is not the one in {artifact.name}{BUNDLE_SUFFIX}"
            )


def _read_bundle(path: Path) -> Bundle:
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    try:
        return Bundle.from_json(path.read_bytes())
    except SigstoreError as exc:
        raise VerificationError(f"{path.name}: not a Sigstore bundle: {exc}") from None


def _parse_json(data: bytes, file_name: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise VerificationError(f"{file_name}: not JSON") from None


def _failure(
    file_name: str,
    artifact: Artifact,
    bundle: Bundle,
    expected: ExpectedIdentity,
    exc: BaseException,
) -> VerificationError:
    """Name the field that differs when the certificate is the problem, else sigstore's reason."""
    from poetry_gitlab_release.signing.identity import certificate_facts, mismatches

    problems = mismatches(expected, certificate_facts(bundle.signing_certificate))
    if problems:
        return VerificationError(
            f"{file_name} does not match the expected signer: " + "; ".join(problems)
        )
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return VerificationError(
        f"{file_name} does not verify for {artifact.name} (sha256 {artifact.sha256[:12]}...): "
        f"{reason}"
    )
