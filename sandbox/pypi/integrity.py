"""PEP 740 on upload and the Integrity API's provenance, with pypi-attestations itself.

warehouse/attestations/services.py (`_extract_attestations_from_request`,
`IntegrityService.parse_attestations`, `build_provenance`) is followed step by step, with its
texts: attestations need Trusted Publishing; the form field is a JSON list of
`pypi_attestations.Attestation`; empty lists and more than one attestation per predicate type
are refused; each is checked with `Attestation.verify(publisher.attestation_identity, dist)`,
i.e. pypi-attestations' own `GitLabPublisher` policy (issuer `https://gitlab.com`, source
repository `https://gitlab.com/{repository}`, Build Config URI
`https://gitlab.com/{repository}//{workflow}@{ref|sha}`); the provenance stored is
`Provenance(attestation_bundles=[AttestationBundle(publisher, attestations)])`.

`Attestation.verify` checks against `Verifier.production()`: pypi.org trusts the public
Sigstore. The stand-in can be told to trust another Sigstore instead (the Sigstore stand-in):
only for the duration of that call, `Verifier.production` as pypi-attestations sees it answers
with a `Verifier` over that instance's trusted root. The policy, the DSSE and subject checks
are the library's, unchanged.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandbox.pypi.oidc import TrustedPublisher

PYPI_PUBLISH_V1 = "https://docs.pypi.org/attestations/publish/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
_SUPPORTED = (PYPI_PUBLISH_V1, SLSA_PROVENANCE_V1)
_SWAP_LOCK = threading.Lock()


class AttestationRefusedError(Exception):
    """Why the attestations were refused (warehouse's AttestationUploadError text)."""


@contextmanager
def _trusting(trusted_root_json: str | None) -> Iterator[None]:
    if trusted_root_json is None:
        yield
        return
    import pypi_attestations._impl as impl
    from sigstore.models import TrustedRoot
    from sigstore.verify import Verifier
    from sigstore_models.trustroot import v1 as trustroot_v1

    root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(trusted_root_json))

    class _ThisInstance:
        @staticmethod
        def production(offline: bool = False) -> Verifier:
            return Verifier(trusted_root=root)

        staging = production

    with _SWAP_LOCK:
        original = getattr(impl, "Verifier")  # noqa: B009
        setattr(impl, "Verifier", _ThisInstance)  # noqa: B010
        try:
            yield
        finally:
            setattr(impl, "Verifier", original)  # noqa: B010


def verify_attestations(
    field: str,
    publisher: TrustedPublisher | None,
    filename: str,
    sha256: str,
    *,
    trusted_root_json: str | None,
) -> dict[str, Any]:
    """The provenance to store for the file, or AttestationRefusedError."""
    from pydantic import TypeAdapter, ValidationError
    from pypi_attestations import (
        Attestation,
        AttestationBundle,
        Distribution,
        Provenance,
        VerificationError,
    )

    if publisher is None:
        raise AttestationRefusedError(
            "Attestations are only supported when using Trusted Publishing"
        )
    try:
        attestations = TypeAdapter(list[Attestation]).validate_json(field)
    except ValidationError as exc:
        raise AttestationRefusedError(f"Malformed attestations: {exc}") from None
    if not attestations:
        raise AttestationRefusedError(
            "Malformed attestations: an empty attestation set is not permitted"
        )
    if len(attestations) > len(_SUPPORTED):
        raise AttestationRefusedError(
            f"A maximum of {len(_SUPPORTED)} attestations per file are supported"
        )
    identity = publisher.attestation_identity()
    dist = Distribution(name=filename, digest=sha256)
    seen: set[str] = set()
    for attestation in attestations:
        try:
            with _trusting(trusted_root_json):
                predicate_type, _ = attestation.verify(identity, dist)
        except VerificationError as exc:
            raise AttestationRefusedError(
                f"Could not verify the uploaded artifact using the included attestation: {exc}"
            ) from None
        except Exception as exc:  # noqa: BLE001 (warehouse reports any other failure too)
            raise AttestationRefusedError(
                f"Unknown error while trying to verify included attestations: {exc}"
            ) from None
        if predicate_type not in _SUPPORTED:
            raise AttestationRefusedError(
                f"Attestation with unsupported predicate type: {predicate_type}"
            )
        if predicate_type in seen:
            raise AttestationRefusedError(
                "Multiple attestations for the same file with the same predicate type "
                f"({predicate_type}) are not supported"
            )
        seen.add(predicate_type)
    bundle = AttestationBundle(publisher=identity, attestations=attestations)
    provenance: dict[str, Any] = Provenance(attestation_bundles=[bundle]).model_dump(mode="json")
    return provenance
