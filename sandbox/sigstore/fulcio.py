"""Fulcio `POST /api/v2/signingCert` with the GitLab (`gitlab-pipeline`) certificate profile.

Errors use Fulcio's grpc-gateway shape `{"code": <grpc code>, "message": ..., "details": []}`
with the HTTP status grpc-gateway maps the code to, and Fulcio's own messages
(`pkg/api/error.go`).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sandbox.sigstore.ca import CertificateAuthority, IssuablePublicKey
from sandbox.sigstore.oidc import DEFAULT_AUDIENCE, TokenMinter, ref_path

# Fulcio's error messages (pkg/api/error.go).
INVALID_CREDENTIALS = "There was an error processing the credentials for this request"
IDENTITY_TOKEN_ERROR = "There was an error processing the identity token"
INVALID_SIGNATURE = "The signature supplied in the request could not be verified"
INVALID_CSR = "The certificate signing request could not be parsed"
INVALID_PUBLIC_KEY = "The public key supplied in the request could not be parsed"
INSECURE_PUBLIC_KEY = "The public key supplied in the request is insecure"

_GRPC_INVALID_ARGUMENT = 3
_GRPC_UNAUTHENTICATED = 16

# Claims the gitlab-pipeline templates read; a token lacking one is refused.
REQUIRED_GITLAB_CLAIMS = (
    "ci_config_ref_uri",
    "ci_config_sha",
    "runner_environment",
    "project_path",
    "sha",
    "ref",
    "ref_type",
    "project_id",
    "namespace_path",
    "namespace_id",
    "pipeline_source",
    "job_id",
    "project_visibility",
)

OID_PREFIX = "1.3.6.1.4.1.57264.1."


class FulcioError(Exception):
    def __init__(self, status: int, grpc_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.grpc_code = grpc_code
        self.message = message

    def body(self) -> dict[str, Any]:
        return {"code": self.grpc_code, "message": self.message, "details": []}


def _unauthenticated(message: str = IDENTITY_TOKEN_ERROR) -> FulcioError:
    return FulcioError(401, _GRPC_UNAUTHENTICATED, message)


def _invalid(message: str) -> FulcioError:
    return FulcioError(400, _GRPC_INVALID_ARGUMENT, message)


def gitlab_profile(claims: dict[str, Any], url: str) -> tuple[str, dict[str, str]]:
    """SAN and the 1.8..1.22 (+1.23) extension values of Fulcio's gitlab-pipeline template.

    `url` is the template's `url` value (Fulcio's default is https://gitlab.com; this
    stand-in is deployed like a private Fulcio configured for its GitLab instance).
    """
    c = {k: str(v) for k, v in claims.items()}
    san = f"https://{c['ci_config_ref_uri']}"
    ext = {
        "8": c["iss"],
        "9": san,
        "10": c["ci_config_sha"],
        "11": c["runner_environment"],
        "12": f"{url}/{c['project_path']}",
        "13": c["sha"],
        "14": ref_path(c["ref"], c["ref_type"]),
        "15": c["project_id"],
        "16": f"{url}/{c['namespace_path']}",
        "17": c["namespace_id"],
        "18": san,
        "19": c["ci_config_sha"],
        "20": c["pipeline_source"],
        "21": f"{url}/{c['project_path']}/-/jobs/{c['job_id']}",
        "22": c["project_visibility"],
    }
    if c.get("environment"):
        ext["23"] = c["environment"]
    return san, {OID_PREFIX + k: v for k, v in ext.items()}


def _check_key(key: Any) -> IssuablePublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
            raise _invalid(INSECURE_PUBLIC_KEY)
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise _invalid(INSECURE_PUBLIC_KEY)
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise _invalid(INVALID_PUBLIC_KEY)


def _verify_possession(key: IssuablePublicKey, signature: bytes, data: bytes) -> None:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            from cryptography.hazmat.primitives.asymmetric import padding

            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except InvalidSignature as exc:
        raise _invalid(INVALID_SIGNATURE) from exc


@dataclass
class IssuedCertificate:
    certificate: x509.Certificate
    claims: dict[str, Any]


class Fulcio:
    def __init__(
        self,
        ca: CertificateAuthority,
        minter: TokenMinter,
        *,
        template_url: str | None = None,
        client_id: str = DEFAULT_AUDIENCE,
    ) -> None:
        self.ca = ca
        self.minter = minter
        self.template_url = template_url
        self.client_id = client_id
        self.requests = 0
        self.issued: list[IssuedCertificate] = []
        self._lock = threading.Lock()

    def signing_cert(self, authorization: str | None, body: bytes) -> dict[str, Any]:
        """Handle one request; returns the JSON response or raises `FulcioError`."""
        with self._lock:
            self.requests += 1
        if not authorization or not authorization.startswith("Bearer "):
            raise _unauthenticated(INVALID_CREDENTIALS)
        token = authorization[len("Bearer ") :].strip()
        try:
            claims = self.minter.verify(token, audience=self.client_id)
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated() from exc
        if any(not claims.get(name) for name in REQUIRED_GITLAB_CLAIMS):
            raise _unauthenticated()

        try:
            request = json.loads(body)
        except ValueError as exc:
            raise _invalid("invalid request body") from exc
        if not isinstance(request, dict):
            raise _invalid("invalid request body")
        key = self._requested_key(request, subject=str(claims["sub"]))

        san, extensions = gitlab_profile(claims, self.template_url or str(claims["iss"]))
        leaf = self.ca.issue_leaf(
            key, san_uri=san, issuer=str(claims["iss"]), extensions=extensions
        )
        with self._lock:
            self.issued.append(IssuedCertificate(leaf, claims))
        pems = [leaf.public_bytes(serialization.Encoding.PEM).decode(), *self.ca.chain_pem()]
        return {"signedCertificateEmbeddedSct": {"chain": {"certificates": pems}}}

    def _requested_key(self, request: dict[str, Any], *, subject: str) -> IssuablePublicKey:
        if "certificateSigningRequest" in request:
            try:
                pem = base64.b64decode(request["certificateSigningRequest"], validate=True)
                csr = x509.load_pem_x509_csr(pem)
            except (ValueError, TypeError, binascii.Error) as exc:
                raise _invalid(INVALID_CSR) from exc
            try:
                key = _check_key(csr.public_key())
            except ValueError as exc:
                raise _invalid(INVALID_PUBLIC_KEY) from exc
            if not csr.is_signature_valid:
                raise _invalid(INVALID_SIGNATURE)
            return key
        credentials = request.get("publicKeyRequest")
        if isinstance(credentials, dict):
            try:
                pem = str(credentials["publicKey"]["content"]).encode()
                key = _check_key(serialization.load_pem_public_key(pem))
                proof = base64.b64decode(credentials["proofOfPossession"], validate=True)
            except (KeyError, TypeError, ValueError, binascii.Error) as exc:
                raise _invalid(INVALID_PUBLIC_KEY) from exc
            # Proof of possession: a signature over the token's subject (Fulcio v2).
            _verify_possession(key, proof, subject.encode())
            return key
        raise _invalid("one of certificateSigningRequest or publicKeyRequest must be set")
