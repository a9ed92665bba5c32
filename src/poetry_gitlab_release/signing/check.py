"""Verify one file against its signature material and the expected identity.

The file is never read here: its sha256 (computed while downloading or hashing in chunks) is
passed as a `sigstore.hashes.Hashed`, so a file of any size costs constant memory.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from poetry_gitlab_release.errors import VerificationError
from poetry_gitlab_release.signing.identity import CertificateFacts, certificate_facts, mismatches
from poetry_gitlab_release.signing.material import (
    MalformedMaterialError,
    ParsedMaterial,
    SignatureMaterial,
    check_statement,
    parse_material,
)
from poetry_gitlab_release.signing.results import FileResult, Verdict

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle
    from sigstore.verify import Verifier
    from sigstore.verify.policy import VerificationPolicy

    from poetry_gitlab_release.signing.claims import ClaimPolicy
    from poetry_gitlab_release.signing.identity import ExpectedIdentity


class _RecordingPolicy:
    """Wraps the identity policy to tell a signer mismatch from any other failure."""

    def __init__(self, inner: VerificationPolicy) -> None:
        self._inner = inner
        self.failed = False
        self.certificate: Certificate | None = None

    def verify(self, cert: Certificate) -> None:
        self.certificate = cert
        try:
            self._inner.verify(cert)
        except Exception:
            self.failed = True
            raise


def verify_file(
    verifier: Verifier,
    *,
    name: str,
    sha256: str,
    size: int | None,
    path: Path | None,
    material: SignatureMaterial | None,
    expected: ExpectedIdentity,
    online_log: bool,
    claims: ClaimPolicy | None = None,
) -> FileResult:
    """A FileResult for one file; never raises for a verification failure."""
    base = FileResult(name=name, verdict=Verdict.FAILED, sha256=sha256, size=size, path=path)
    if material is None:
        return replace(base, verdict=Verdict.UNSIGNED, reason="no signature material found")
    label = material.kind.label
    try:
        parsed = parse_material(material)
    except MalformedMaterialError as exc:
        return replace(base, material=label, reason=f"{material.source}: {exc}")
    from poetry_gitlab_release.signing.claims import read_claims

    facts = certificate_facts(parsed.certificate)
    gitlab_claims = read_claims(parsed.certificate)
    result = replace(
        base,
        material=label,
        identity=facts.identity,
        issuer=facts.issuer,
        ref=facts.ref,
        commit=facts.commit,
        job_url=facts.job_url,
        log_index=parsed.log_index,
        claims=gitlab_claims,
    )
    recorder = _RecordingPolicy(_policy(expected, claims))
    try:
        _verify(verifier, parsed, name, sha256, recorder, online_log)
    except Exception as exc:  # noqa: BLE001 - sigstore raises many types; each is a failed file
        return replace(result, reason=_reason(exc, recorder, expected, facts, claims))
    return replace(result, verdict=Verdict.VERIFIED)


def _verify(
    verifier: Verifier,
    parsed: ParsedMaterial,
    name: str,
    sha256: str,
    policy: _RecordingPolicy,
    online_log: bool,
) -> None:
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    hashed = Hashed(digest=bytes.fromhex(sha256), algorithm=HashAlgorithm.SHA2_256)
    bundle = parsed.bundle
    if bundle is None:
        if not online_log:
            raise VerificationError(
                "only a detached .sig/.crt was published; it needs the transparency log online "
                "(run without --offline)"
            )
        bundle = _detached_bundle(verifier, parsed, hashed)
    if parsed.is_dsse:
        payload_type, payload = verifier.verify_dsse(bundle, policy)
        check_statement(payload_type, payload, name, sha256, by_name=parsed.require_subject_name)
    else:
        verifier.verify_artifact(hashed, bundle, policy)


def _detached_bundle(verifier: Verifier, parsed: ParsedMaterial, hashed: Hashed) -> Bundle:
    """Rebuild a bundle from .sig/.crt by asking the trusted root's Rekor for the entry.

    sigstore-python has no public API for this; its own CLI does exactly these two calls.
    """
    from sigstore._internal.rekor import _hashedrekord_from_parts
    from sigstore.models import Bundle

    assert parsed.signature is not None
    entry = verifier._rekor.log.entries.retrieve.post(
        _hashedrekord_from_parts(parsed.certificate, parsed.signature, hashed)
    )
    if entry is None:
        raise VerificationError("the transparency log has no entry for this .sig/.crt and file")
    return Bundle.from_parts(parsed.certificate, parsed.signature, entry)


def _policy(expected: ExpectedIdentity, claims: ClaimPolicy | None) -> VerificationPolicy:
    if claims is None or claims.empty:
        return expected.to_policy()
    from sigstore.verify.policy import AllOf

    return AllOf([expected.to_policy(), claims.as_sigstore_policy()])


def _reason(
    exc: Exception,
    recorder: _RecordingPolicy,
    expected: ExpectedIdentity,
    facts: CertificateFacts,
    claims: ClaimPolicy | None = None,
) -> str:
    from sigstore.errors import CertValidationError

    detail = " ".join(str(exc).split())[:300] or type(exc).__name__
    if recorder.failed:
        from poetry_gitlab_release.signing.claims import read_claims

        found = mismatches(expected, facts)
        if claims is not None and recorder.certificate is not None:
            found += claims.mismatches(read_claims(recorder.certificate))
        return "signer does not match: " + ("; ".join(found) if found else detail)
    if isinstance(exc, CertValidationError):
        return f"certificate not issued by a trusted CA: {detail}"
    if "message digest mismatch" in detail.lower() or "signature is invalid for input" in detail:
        return f"the signature does not match this file's content (tampered, or another file's bundle): {detail}"
    if isinstance(exc, VerificationError):
        return exc.message
    return f"verification failed: {detail}"
