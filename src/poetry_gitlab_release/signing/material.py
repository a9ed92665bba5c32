"""Signature material for one file, and its conversion to a Sigstore bundle.

Three kinds, in order of preference:
  `<file>.sigstore.json`        a Sigstore bundle (v0.1-v0.3; hashedrekord or DSSE)
  `<file>.publish.attestation`  a PEP 740 attestation (DSSE in-toto statement), converted here
                                into a bundle with public sigstore APIs only
  `<file>.sig` + `<file>.crt`   cosign-style detached signature and certificate; verifying these
                                needs the transparency log online (no inclusion proof is carried)
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from poetry_gitlab_release.errors import VerificationError

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.models import Bundle

IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json"


class MaterialKind(str, Enum):
    BUNDLE = ".sigstore.json"
    ATTESTATION = ".publish.attestation"
    DETACHED = ".sig"

    @property
    def label(self) -> str:
        return {
            MaterialKind.BUNDLE: "sigstore bundle",
            MaterialKind.ATTESTATION: "PEP 740 attestation",
            MaterialKind.DETACHED: "detached .sig/.crt",
        }[self]


@dataclass(frozen=True)
class SignatureMaterial:
    kind: MaterialKind
    content: bytes  # the bundle, the attestation, or the base64 signature
    source: str  # where it came from (a path or a registry file name), for messages
    certificate: bytes | None = None  # PEM, for DETACHED only


class MalformedMaterialError(VerificationError):
    """The signature material cannot be parsed: truncated, not JSON, wrong shape."""


@dataclass(frozen=True)
class ParsedMaterial:
    bundle: Bundle | None  # None for detached material (the log entry is fetched later)
    is_dsse: bool
    log_index: int | None
    certificate: Certificate
    require_subject_name: bool  # PEP 740: the statement's subject name must be the file name
    signature: bytes | None = None  # DETACHED only


def parse_material(material: SignatureMaterial) -> ParsedMaterial:
    """Turn raw material into a Sigstore bundle, or raise MalformedMaterialError naming the cause."""
    if material.kind is MaterialKind.BUNDLE:
        document = _json_object(material.content, "bundle")
        bundle = _load_bundle(material.content)
        return ParsedMaterial(
            bundle=bundle,
            is_dsse="dsseEnvelope" in document,
            log_index=_log_index(document.get("verificationMaterial")),
            certificate=bundle.signing_certificate,
            require_subject_name=False,
        )
    if material.kind is MaterialKind.ATTESTATION:
        document = _json_object(material.content, "attestation")
        converted = attestation_to_bundle_json(document)
        bundle = _load_bundle(json.dumps(converted).encode())
        return ParsedMaterial(
            bundle=bundle,
            is_dsse=True,
            log_index=_log_index(converted["verificationMaterial"]),
            certificate=bundle.signing_certificate,
            require_subject_name=True,
        )
    return _parse_detached(material)


def attestation_to_bundle_json(attestation: dict[str, Any]) -> dict[str, Any]:
    """A PEP 740 attestation as a v0.3 Sigstore bundle document (what pypi-attestations'
    `Attestation.to_bundle` builds, written against the public bundle format)."""
    if attestation.get("version") != 1:
        raise MalformedMaterialError(
            f"malformed attestation: version is {attestation.get('version')!r}, expected 1"
        )
    material = attestation.get("verification_material")
    envelope = attestation.get("envelope")
    if not isinstance(material, dict) or not isinstance(envelope, dict):
        raise MalformedMaterialError(
            "malformed attestation: verification_material or envelope missing"
        )
    certificate = _b64_field(material, "certificate", "attestation certificate")
    entries = material.get("transparency_entries")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise MalformedMaterialError("malformed attestation: no transparency log entry")
    statement = _b64_field(envelope, "statement", "attestation statement")
    signature = _b64_field(envelope, "signature", "attestation signature")
    return {
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {
            "certificate": {"rawBytes": base64.b64encode(certificate).decode()},
            "tlogEntries": [entries[0]],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        },
    }


def check_statement(
    payload_type: str, payload: bytes, name: str, sha256: str, *, by_name: bool
) -> None:
    """The in-toto statement must name this file's sha256 (and its name, for PEP 740)."""
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise VerificationError(f"the DSSE payload type is {payload_type!r}, not in-toto")
    try:
        statement = json.loads(payload)
    except (ValueError, RecursionError):
        raise VerificationError("the in-toto statement is not JSON") from None
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list) or not subjects:
        raise VerificationError("the in-toto statement has no subject")
    for subject in subjects:
        if not isinstance(subject, dict):
            continue
        digests = subject.get("digest")
        digest = digests.get("sha256") if isinstance(digests, dict) else None
        if not isinstance(digest, str) or digest.lower() != sha256:
            continue
        if by_name and subject.get("name") != name:
            raise VerificationError(
                f"the attestation's subject is {subject.get('name')!r}, not this file"
            )
        return
    names = ", ".join(str(s.get("name")) for s in subjects if isinstance(s, dict))
    raise VerificationError(
        f"the attestation is for another artifact (subject {names or '?'}): sha256 differs"
    )


# --- helpers ---------------------------------------------------------------------------------


def _json_object(content: bytes, what: str) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except json.JSONDecodeError as exc:
        # Stopping at the very end of a document that started well means it was cut short.
        at_end = exc.pos >= len(exc.doc.rstrip()) or exc.msg.startswith("Unterminated string")
        cut_short = at_end and exc.doc.lstrip()[:1] in {"{", "["}
        reason = "truncated" if cut_short else "invalid"
        raise MalformedMaterialError(f"malformed {what}: {reason} JSON ({exc})") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMaterialError(f"malformed {what}: invalid JSON ({exc})") from None
    except RecursionError:
        raise MalformedMaterialError(f"malformed {what}: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise MalformedMaterialError(f"malformed {what}: the document is not a JSON object")
    return document


def _load_bundle(content: bytes) -> Bundle:
    from sigstore.models import Bundle

    try:
        return Bundle.from_json(content)
    except Exception as exc:  # noqa: BLE001 - any parsing failure means a malformed bundle
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise MalformedMaterialError(f"malformed bundle: {detail}") from None


def _b64_field(document: dict[str, Any], key: str, what: str) -> bytes:
    value = document.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedMaterialError(f"malformed attestation: {what} missing")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMaterialError(f"malformed attestation: {what} is not base64") from None


def _log_index(verification_material: object) -> int | None:
    if not isinstance(verification_material, dict):
        return None
    entries = verification_material.get("tlogEntries")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        return None
    value = entries[0].get("logIndex")
    try:
        return int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        return None


def _parse_detached(material: SignatureMaterial) -> ParsedMaterial:
    from cryptography.x509 import load_pem_x509_certificate

    try:
        signature = base64.b64decode(material.content.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMaterialError("malformed .sig: not base64") from None
    pem = material.certificate or b""
    if b"-----BEGIN" not in pem:
        try:  # cosign v2 writes base64(PEM)
            pem = base64.b64decode(pem.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise MalformedMaterialError("malformed .crt: neither PEM nor base64 PEM") from None
    try:
        certificate = load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise MalformedMaterialError(f"malformed .crt: {exc}") from None
    return ParsedMaterial(
        bundle=None,
        is_dsse=False,
        log_index=None,
        certificate=certificate,
        require_subject_name=False,
        signature=signature,
    )
