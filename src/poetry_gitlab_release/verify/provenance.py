"""PEP 740 provenance of a file on PyPI (pypi/integrity.py fetches it): verify it.

`GET {index}/integrity/{project}/{version}/{filename}/provenance` (pypi/warehouse
docs/user/api/integrity.md; `Accept: application/vnd.pypi.integrity.v1+json`) answers a
provenance object `{"version": 1, "attestation_bundles": [{"publisher": {...},
"attestations": [...]}]}`, or 404 when the file has none. Each attestation is a DSSE envelope
over an in-toto statement naming the file and its sha256, signed by the Trusted Publisher the
bundle names. We verify every attestation against that publisher, as PyPI did on upload
(pypi-attestations' `GitLabPublisher` / `GitHubPublisher` policies), and against the sha256 in
the lock, so a provenance object for another file cannot pass.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import VerificationError
from poetry_gitlab_release.verify.pins import Signer

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.verify import Verifier

# The issuers PyPI's Trusted Publishers use (warehouse/oidc/models/*.py; pypi-attestations
# `GitLabPublisher` and `GitHubPublisher._as_policy`): PyPI supports gitlab.com only.
PUBLISHER_ISSUERS = {
    "GitLab": "https://gitlab.com",
    "GitHub": "https://token.actions.githubusercontent.com",
}


@dataclass(frozen=True)
class ProvenanceCheck:
    ok: bool
    publishers: tuple[Signer, ...]
    reason: str | None = None
    identity: str | None = None
    log_index: int | None = None


def publisher_signer(publisher: Any) -> Signer:
    """A provenance object's publisher as a PEP 751 attestation identity."""
    if not isinstance(publisher, dict) or not isinstance(publisher.get("kind"), str):
        raise VerificationError("malformed provenance: a bundle has no publisher kind")
    values = {k: v for k, v in publisher.items() if isinstance(v, str) and v and k != "kind"}
    return Signer(
        kind=publisher["kind"],
        repository=values.pop("repository", None),
        workflow_filepath=values.pop("workflow_filepath", None),
        environment=values.pop("environment", None),
        issuer=PUBLISHER_ISSUERS.get(publisher["kind"]),
        extra=values,
    )


class _PublisherPolicy:
    """The certificate must be the Trusted Publisher's: issuer, repository, workflow."""

    def __init__(self, signer: Signer) -> None:
        issuer = PUBLISHER_ISSUERS.get(signer.kind)
        if issuer is None or not signer.repository:
            raise VerificationError(f"publisher kind {signer.kind!r} is not supported")
        self.issuer = issuer
        self.repository_uri = f"{issuer if signer.kind == 'GitLab' else 'https://github.com'}/" + (
            signer.repository
        )
        if signer.kind == "GitLab":
            workflow = signer.workflow_filepath or ".gitlab-ci.yml"
            self.san_prefix = f"https://gitlab.com/{signer.repository}//{workflow}@"
        else:
            workflow = signer.extra.get("workflow", "")
            self.san_prefix = (
                f"https://github.com/{signer.repository}/.github/workflows/{workflow}@"
            )

    def verify(self, cert: Certificate) -> None:
        from sigstore.errors import VerificationError as SigstoreVerificationError

        from poetry_gitlab_release.signing.claims import read_claims

        claims = read_claims(cert)
        problems = []
        if claims.issuer != self.issuer:
            problems.append(f"issuer is {claims.issuer}, expected {self.issuer}")
        if claims.source_repository_uri != self.repository_uri:
            problems.append(
                f"source repository is {claims.source_repository_uri}, "
                f"expected {self.repository_uri}"
            )
        if not (claims.identity or "").startswith(self.san_prefix):
            problems.append(f"identity is {claims.identity}, expected {self.san_prefix}...")
        if problems:
            raise SigstoreVerificationError("; ".join(problems))


def verify_provenance(
    verifier: Verifier, provenance: Any, *, filename: str, sha256: str
) -> ProvenanceCheck:
    """Every attestation of every bundle must verify for this file and its publisher."""
    from poetry_gitlab_release.signing.material import (
        MaterialKind,
        SignatureMaterial,
        parse_material,
    )
    from poetry_gitlab_release.signing.statement import check_statement

    bundles = provenance.get("attestation_bundles") if isinstance(provenance, dict) else None
    if not isinstance(bundles, list) or not bundles:
        return ProvenanceCheck(False, (), "malformed provenance: no attestation bundles")
    publishers: list[Signer] = []
    identity: str | None = None
    log_index: int | None = None
    try:
        for bundle in bundles:
            if not isinstance(bundle, dict):
                raise VerificationError("malformed provenance: a bundle is not an object")
            signer = publisher_signer(bundle.get("publisher"))
            publishers.append(signer)
            policy = _PublisherPolicy(signer)
            attestations = bundle.get("attestations")
            if not isinstance(attestations, list) or not attestations:
                raise VerificationError("malformed provenance: a bundle has no attestations")
            for attestation in attestations:
                material = SignatureMaterial(
                    MaterialKind.ATTESTATION,
                    json.dumps(attestation).encode(),
                    f"{filename} provenance",
                )
                parsed = parse_material(material)
                assert parsed.bundle is not None
                payload_type, payload = verifier.verify_dsse(parsed.bundle, policy)
                check_statement(payload_type, payload, filename, sha256, by_name=True)
                identity = identity or _san(parsed.certificate)
                log_index = log_index if log_index is not None else parsed.log_index
    except VerificationError as exc:
        return ProvenanceCheck(False, tuple(publishers), exc.message, identity, log_index)
    except Exception as exc:  # noqa: BLE001 - sigstore raises many types; each is a failure
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        return ProvenanceCheck(False, tuple(publishers), f"provenance does not verify: {detail}")
    return ProvenanceCheck(True, tuple(publishers), None, identity, log_index)


def _san(cert: Certificate) -> str | None:
    from poetry_gitlab_release.signing.claims import san_uri

    return san_uri(cert)
