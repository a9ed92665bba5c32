"""A certificate-transparency log stand-in: RFC 6962 precertificate SCTs."""

from __future__ import annotations

import struct
import time

from cryptography.hazmat.primitives.asymmetric import ec

from sandbox.sigstore.der import octet_string
from sandbox.sigstore.keys import ecdsa_sha256, key_id, new_p256

SCT_LIST_OID = "1.3.6.1.4.1.11129.2.4.2"
_HASH_SHA256 = 4
_SIG_ECDSA = 3


def _u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


class CTLog:
    """Signs precertificate SCTs with its own P-256 key (the key listed in `ctlogs`)."""

    def __init__(self, key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self.key = key or new_p256()
        self.log_id = key_id(self.key.public_key())
        self.submissions = 0

    def sign_precert(self, issuer_key_hash: bytes, tbs_precert: bytes) -> bytes:
        """Return one serialized SCT (RFC 6962 section 3.2) for a precertificate."""
        timestamp_ms = int(time.time() * 1000)
        extensions = b""
        signed = (
            struct.pack("!BBQH", 0, 0, timestamp_ms, 1)  # v1, certificate_timestamp, precert
            + issuer_key_hash
            + _u24(len(tbs_precert))
            + tbs_precert
            + struct.pack("!H", len(extensions))
            + extensions
        )
        signature = ecdsa_sha256(self.key, signed)
        self.submissions += 1
        return (
            struct.pack("!B", 0)
            + self.log_id
            + struct.pack("!Q", timestamp_ms)
            + struct.pack("!H", len(extensions))
            + extensions
            + struct.pack("!BBH", _HASH_SHA256, _SIG_ECDSA, len(signature))
            + signature
        )

    @staticmethod
    def sct_list_extension_value(scts: list[bytes]) -> bytes:
        """The X.509 extension value: DER OCTET STRING around the TLS SCT list."""
        body = b"".join(struct.pack("!H", len(s)) + s for s in scts)
        return octet_string(struct.pack("!H", len(body)) + body)
