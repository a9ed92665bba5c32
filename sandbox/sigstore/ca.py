"""The Fulcio certificate authority: a P-384 root, a P-384 intermediate, 10-minute leaves.

Leaves follow Fulcio's profile (empty subject, critical URI SAN, digitalSignature,
codeSigning, SKI/AKI, the OIDC extensions) and carry exactly one embedded precertificate
SCT. The SCT signs the TBS of the certificate built *without* the SCT extension; the
SCT extension is then appended last, so `tbs_precertificate_bytes` of the final leaf
equals the signed TBS (RFC 6962 section 3.1).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox.sigstore.ct import SCT_LIST_OID, CTLog
from sandbox.sigstore.der import utf8_string
from sandbox.sigstore.keys import key_id, new_p384

LEAF_LIFETIME = dt.timedelta(minutes=10)
OID_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1"

IssuablePublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore-standin"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


@dataclass
class CertificateAuthority:
    """Root + intermediate; `issue_leaf` builds a Fulcio-profile leaf with an embedded SCT."""

    ct_log: CTLog
    root_key: ec.EllipticCurvePrivateKey = field(default_factory=new_p384)
    intermediate_key: ec.EllipticCurvePrivateKey = field(default_factory=new_p384)
    not_before: dt.datetime = field(default_factory=lambda: _now() - dt.timedelta(hours=1))

    def __post_init__(self) -> None:
        not_after = self.not_before + dt.timedelta(days=3650)
        root_pub = self.root_key.public_key()
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name("sigstore-standin root"))
            .issuer_name(_name("sigstore-standin root"))
            .public_key(root_pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_pub), critical=False)
            .sign(self.root_key, hashes.SHA384())
        )
        inter_pub = self.intermediate_key.public_key()
        self.intermediate = (
            x509.CertificateBuilder()
            .subject_name(_name("sigstore-standin intermediate"))
            .issuer_name(self.root.subject)
            .public_key(inter_pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_pub), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_pub), critical=False
            )
            .sign(self.root_key, hashes.SHA384())
        )

    @property
    def chain(self) -> list[x509.Certificate]:
        """Intermediate first, root last (the order Fulcio returns after the leaf)."""
        return [self.intermediate, self.root]

    def chain_pem(self) -> list[str]:
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in self.chain]

    def issue_leaf(
        self,
        public_key: IssuablePublicKey,
        *,
        san_uri: str,
        issuer: str,
        extensions: dict[str, str],
        now: dt.datetime | None = None,
    ) -> x509.Certificate:
        """Issue a 10-minute code-signing leaf; `extensions` maps OID -> UTF8String value."""
        start = now or _now()
        inter_pub = self.intermediate_key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + LEAF_LIFETIME)
            .add_extension(_leaf_key_usage(), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(inter_pub), critical=False
            )
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san_uri)]),
                critical=True,
            )
            # 1.1 (legacy issuer) holds the raw bytes, 1.8+ hold DER UTF8Strings.
            .add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(OID_ISSUER_V1), issuer.encode("utf-8")
                ),
                critical=False,
            )
        )
        for oid, value in extensions.items():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), utf8_string(value)),
                critical=False,
            )
        precert = builder.sign(self.intermediate_key, hashes.SHA384())
        sct = self.ct_log.sign_precert(key_id(inter_pub), precert.tbs_certificate_bytes)
        leaf = builder.add_extension(
            x509.UnrecognizedExtension(
                x509.ObjectIdentifier(SCT_LIST_OID), CTLog.sct_list_extension_value([sct])
            ),
            critical=False,
        ).sign(self.intermediate_key, hashes.SHA384())
        if leaf.tbs_precertificate_bytes != precert.tbs_certificate_bytes:  # pragma: no cover
            raise RuntimeError("precertificate TBS mismatch: the SCT would not verify")
        return leaf
