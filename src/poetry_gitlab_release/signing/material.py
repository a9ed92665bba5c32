"""Signature material for one file, and every conversion between its forms, both directions.

The conversions exist once (as in pypi-attestations' `Attestation.to_bundle`/`from_bundle`):
  bundle -> PEP 740 attestation  `attestation_from_bundle` (the release writes it)
  PEP 740 attestation -> bundle  `attestation_to_bundle_json`, `bundle_from_attestation`
  bundle -> cosign .sig/.crt     `cosign_files` (the release writes them)
  cosign .sig/.crt -> material   `parse_material` (DETACHED)

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
from poetry_gitlab_release.signing.statement import IN_TOTO_PAYLOAD_TYPE

if TYPE_CHECKING:
    from cryptography.x509 import Certificate
    from sigstore.hashes import Hashed
    from sigstore.models import Bundle

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
    certificate: Certificate
    is_dsse: bool = False
    log_index: int | None = None
    require_subject_name: bool = False  # PEP 740: the statement's subject must name the file
    signature: bytes | None = None  # DETACHED only


def parse_material(material: SignatureMaterial) -> ParsedMaterial:
    """Turn raw material into a Sigstore bundle, or raise MalformedMaterialError naming the cause."""
    if material.kind is MaterialKind.BUNDLE:
        document = _json_object(material.content, "bundle")
        bundle = _load_bundle(material.content)
        return ParsedMaterial(
            bundle,
            bundle.signing_certificate,
            is_dsse="dsseEnvelope" in document,
            log_index=log_index(document.get("verificationMaterial")),
        )
    if material.kind is MaterialKind.ATTESTATION:
        document = _json_object(material.content, "attestation")
        converted = attestation_to_bundle_json(document)
        bundle = _load_bundle(json.dumps(converted).encode())
        index = log_index(converted["verificationMaterial"])
        return ParsedMaterial(
            bundle, bundle.signing_certificate, True, index, require_subject_name=True
        )
    return _parse_detached(material)


def attestation_to_bundle_json(attestation: object) -> dict[str, Any]:
    """A PEP 740 attestation as a v0.3 Sigstore bundle document (what pypi-attestations'
    `Attestation.to_bundle` builds, written against the public bundle format)."""
    if not isinstance(attestation, dict):
        raise MalformedMaterialError("malformed attestation: the document is not a JSON object")
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


def bundle_from_attestation(attestation: object) -> Bundle:
    """The Sigstore bundle a PEP 740 attestation stands for."""
    return _load_bundle(json.dumps(attestation_to_bundle_json(attestation)).encode())


def attestation_from_bundle(bundle: Bundle) -> dict[str, Any]:
    """A DSSE Sigstore bundle as a PEP 740 attestation object (what pypi-attestations writes)."""
    document = json.loads(bundle.to_json())
    envelope = document.get("dsseEnvelope")
    if not envelope or len(envelope.get("signatures", [])) != 1:
        raise MalformedMaterialError(
            "the attestation bundle has no DSSE envelope with one signature"
        )
    material = document["verificationMaterial"]
    return {
        "version": 1,
        "verification_material": {
            "certificate": material["certificate"]["rawBytes"],
            "transparency_entries": material["tlogEntries"],
        },
        "envelope": {
            "statement": envelope["payload"],
            "signature": envelope["signatures"][0]["sig"],
        },
    }


def cosign_files(bundle: Bundle) -> tuple[str, str]:
    """(.sig, .crt) contents as `cosign sign-blob` writes them: base64, no trailing newline."""
    from cryptography.hazmat.primitives.serialization import Encoding

    signature = base64.b64encode(bundle.signature).decode("ascii")
    pem = bundle.signing_certificate.public_bytes(Encoding.PEM)
    return signature, base64.b64encode(pem).decode("ascii")


def hashed(sha256: str) -> Hashed:
    """A file's sha256 as sigstore's prehashed input: nothing is read whole."""
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    return Hashed(digest=bytes.fromhex(sha256), algorithm=HashAlgorithm.SHA2_256)


def log_index(verification_material: object) -> int | None:
    """The index of the first transparency-log entry of a bundle's verificationMaterial."""
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


def bundle_log_index(document: object) -> int | None:
    """`log_index` of a bundle document."""
    return log_index(document.get("verificationMaterial") if isinstance(document, dict) else None)


def attestation_log_index(attestation: dict[str, Any]) -> int | None:
    """`log_index` of a PEP 740 attestation (its transparency_entries are the bundle's)."""
    material = attestation.get("verification_material")
    entries = material.get("transparency_entries") if isinstance(material, dict) else None
    return log_index({"tlogEntries": entries})


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
    return ParsedMaterial(None, certificate, signature=signature)
