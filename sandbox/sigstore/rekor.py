"""Rekor v1: `hashedrekord` 0.0.1 and `dsse` 0.0.1 entries in an RFC 6962 log.

Bodies are canonicalised as Rekor does (RFC 8785 JSON of the canonical entry), each
response carries an inclusion proof with a signed-note checkpoint and a signed entry
timestamp (ECDSA over RFC 8785 `{body, integratedTime, logID (hex), logIndex}`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from sandbox.sigstore.keys import b64, ecdsa_sha256, key_id, new_p256
from sandbox.sigstore.merkle import MerkleTree, leaf_hash

_HASHES: dict[str, tuple[hashes.HashAlgorithm, int]] = {
    "sha256": (hashes.SHA256(), 64),
    "sha384": (hashes.SHA384(), 96),
    "sha512": (hashes.SHA512(), 128),
}


class RekorError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.status, "message": self.message}


def _bad(message: str) -> RekorError:
    return RekorError(400, message)


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"{what} is not valid base64") from exc


VerifierKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def _load_verifier(pem: bytes) -> tuple[VerifierKey, bytes]:
    """A PEM certificate or public key -> (key, canonical PEM), as Rekor's x509 pki."""
    try:
        if b"CERTIFICATE" in pem:
            cert = x509.load_pem_x509_certificate(pem)
            key: Any = cert.public_key()
            canonical = cert.public_bytes(serialization.Encoding.PEM)
        else:
            key = serialization.load_pem_public_key(pem)
            canonical = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
    except ValueError as exc:
        raise _bad(f"invalid public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise _bad("unsupported public key type")
    return key, canonical


def _verify(key: VerifierKey, signature: bytes, data: bytes, *, prehashed: str | None) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            alg: Any = Prehashed(_HASHES[prehashed][0]) if prehashed else hashes.SHA256()
            key.verify(signature, data, ec.ECDSA(alg))
        elif isinstance(key, rsa.RSAPublicKey):
            alg = Prehashed(_HASHES[prehashed][0]) if prehashed else hashes.SHA256()
            key.verify(signature, data, padding.PKCS1v15(), alg)
        else:
            if prehashed:
                return False
            key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def canonicalize(proposed: Any, *, verify: bool = True) -> dict[str, Any]:
    """Rekor's `Canonicalize()` for the two supported kinds; validates like Rekor."""
    if not isinstance(proposed, dict):
        raise _bad("the proposed entry must be a JSON object")
    kind, version, spec = proposed.get("kind"), proposed.get("apiVersion"), proposed.get("spec")
    if not isinstance(spec, dict):
        raise _bad("spec is required")
    if kind == "hashedrekord" and version == "0.0.1":
        return _canonical_hashedrekord(spec, verify=verify)
    if kind == "dsse" and version == "0.0.1":
        return _canonical_dsse(spec, verify=verify)
    raise _bad(f"unsupported entry kind/version {kind!r}/{version!r}")


def _canonical_hashedrekord(spec: dict[str, Any], *, verify: bool) -> dict[str, Any]:
    try:
        sig_b64 = spec["signature"]["content"]
        key_b64 = spec["signature"]["publicKey"]["content"]
        algorithm = spec["data"]["hash"]["algorithm"]
        value = spec["data"]["hash"]["value"]
    except (KeyError, TypeError) as exc:
        raise _bad(f"validation failure: missing {exc}") from exc
    signature = _b64decode(sig_b64, "signature content")
    key, canonical_pem = _load_verifier(_b64decode(key_b64, "public key content"))
    if algorithm not in _HASHES:
        raise _bad(f"unsupported hash algorithm {algorithm!r}")
    if not isinstance(value, str) or len(value) != _HASHES[algorithm][1]:
        raise _bad("invalid hash value length")
    try:
        digest = bytes.fromhex(value)
    except ValueError as exc:
        raise _bad("hash value is not hex") from exc
    if verify and not _verify(key, signature, digest, prehashed=algorithm):
        raise _bad("verifying signature: invalid signature when validating ASN.1 encoded signature")
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": algorithm, "value": value.lower()}},
            "signature": {"content": b64(signature), "publicKey": {"content": b64(canonical_pem)}},
        },
    }


def _canonical_dsse(spec: dict[str, Any], *, verify: bool) -> dict[str, Any]:
    proposed = spec.get("proposedContent")
    if not isinstance(proposed, dict):
        raise _bad("proposedContent is required")
    raw_envelope, verifiers = proposed.get("envelope"), proposed.get("verifiers")
    if not isinstance(raw_envelope, str) or not isinstance(verifiers, list) or not verifiers:
        raise _bad("proposedContent needs an envelope and at least one verifier")
    try:
        envelope = json.loads(raw_envelope)
        payload_type = envelope["payloadType"]
        payload = _b64decode(envelope["payload"], "payload")
        signatures = envelope["signatures"]
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad("invalid DSSE envelope") from exc
    if not isinstance(signatures, list) or not signatures:
        raise _bad("the DSSE envelope has no signatures")
    keys = [_load_verifier(_b64decode(v, "verifier")) for v in verifiers]
    message = pae(str(payload_type), payload)
    items = []
    for entry in signatures:
        sig = _b64decode(entry.get("sig") if isinstance(entry, dict) else None, "signature")
        match = next(
            (pem for key, pem in keys if not verify or _verify(key, sig, message, prehashed=None)),
            None,
        )
        if match is None:
            raise _bad("could not verify envelope signature with any verifier")
        items.append({"signature": b64(sig), "verifier": b64(match)})
    items.sort(key=lambda item: item["signature"])
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {
                "algorithm": "sha256",
                "value": hashlib.sha256(raw_envelope.encode()).hexdigest(),
            },
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": items,
        },
    }


@dataclass(frozen=True)
class LogEntry:
    index: int
    uuid: str  # hex leaf hash (64 chars)
    body: bytes  # canonical JSON
    integrated_time: int
    kind: str
    signed_entry_timestamp: bytes = b""


class RekorLog:
    """The log itself: entries, tree, signing key; thread safe."""

    def __init__(self, *, origin: str, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.key = key or new_p256()
        self.log_id = key_id(self.key.public_key())
        self.tree_id = secrets.randbelow(2**62) + 2**62
        self.origin_name = origin
        self.tree = MerkleTree()
        self.entries: list[LogEntry] = []
        self._by_uuid: dict[str, LogEntry] = {}
        self._checkpoints: dict[int, str] = {}  # one signed tree head per size, as Rekor caches
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        return f"{self.origin_name} - {self.tree_id}"

    def entry_id(self, entry: LogEntry) -> str:
        """Rekor's EntryID: 16 hex digits of tree id + the 64-hex UUID."""
        return f"{self.tree_id:016x}{entry.uuid}"

    def add(self, proposed: Any) -> tuple[str, dict[str, Any]]:
        canonical = canonicalize(proposed)
        body = rfc8785.dumps(canonical)
        uuid = leaf_hash(body).hex()
        with self._lock:
            if uuid in self._by_uuid:
                existing = self._by_uuid[uuid]
                raise RekorError(
                    409,
                    f"an equivalent entry already exists in the transparency log with UUID {uuid}",
                    {"Location": f"/api/v1/log/entries/{self.entry_id(existing)}"},
                )
            index = self.tree.append(body)
            entry = LogEntry(index, uuid, body, int(time.time()), str(canonical["kind"]))
            entry = replace(entry, signed_entry_timestamp=self.signed_entry_timestamp(entry))
            self.entries.append(entry)
            self._by_uuid[uuid] = entry
            return self.entry_id(entry), self._render(entry, len(self.entries))

    def get(
        self, *, uuid: str | None = None, index: int | None = None
    ) -> tuple[str, dict[str, Any]]:
        with self._lock:
            entry: LogEntry | None = None
            if uuid is not None:
                entry = self._by_uuid.get(uuid[-64:].lower())
            elif index is not None and 0 <= index < len(self.entries):
                entry = self.entries[index]
            if entry is None:
                raise RekorError(404, "entry not found")
            return self.entry_id(entry), self._render(entry, len(self.entries))

    def find(self, proposed: Any) -> tuple[str, dict[str, Any]] | None:
        body = rfc8785.dumps(canonicalize(proposed, verify=False))
        try:
            return self.get(uuid=leaf_hash(body).hex())
        except RekorError:
            return None

    def checkpoint(self, size: int, root: bytes) -> str:
        """A signed note: origin, size, base64 root; one signature line with a key hint."""
        cached = self._checkpoints.get(size)
        if cached is not None:
            return cached
        note = f"{self.origin}\n{size}\n{b64(root)}\n"
        signature = ecdsa_sha256(self.key, note.encode())
        signed = f"{note}\n\u2014 {self.origin_name} {b64(self.log_id[:4] + signature)}\n"
        self._checkpoints[size] = signed
        return signed

    def log_info(self) -> dict[str, Any]:
        with self._lock:
            size = len(self.tree)
            root = self.tree.root()
            return {
                "rootHash": root.hex(),
                "treeSize": size,
                "signedTreeHead": self.checkpoint(size, root),
                "treeID": str(self.tree_id),
                "inactiveShards": [],
            }

    def public_key_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def signed_entry_timestamp(self, entry: LogEntry) -> bytes:
        payload: dict[str, str | int] = {
            "body": b64(entry.body),
            "integratedTime": entry.integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": entry.index,
        }
        return ecdsa_sha256(self.key, rfc8785.dumps(payload))

    def _render(self, entry: LogEntry, size: int) -> dict[str, Any]:
        root = self.tree.root(size)
        return {
            "body": b64(entry.body),
            "integratedTime": entry.integrated_time,
            "logID": self.log_id.hex(),
            "logIndex": entry.index,
            "verification": {
                "inclusionProof": {
                    "checkpoint": self.checkpoint(size, root),
                    "hashes": [h.hex() for h in self.tree.inclusion_proof(entry.index, size)],
                    "logIndex": entry.index,
                    "rootHash": root.hex(),
                    "treeSize": size,
                },
                "signedEntryTimestamp": b64(entry.signed_entry_timestamp),
            },
        }
