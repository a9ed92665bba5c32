"""Fulcio stand-in over HTTP: Fulcio's error shape for what real Fulcio refuses."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sandbox.sigstore import SigstoreStandIn
from sandbox.sigstore.fulcio import (
    IDENTITY_TOKEN_ERROR,
    INSECURE_PUBLIC_KEY,
    INVALID_CREDENTIALS,
    INVALID_SIGNATURE,
)


@pytest.fixture(scope="module")
def standin() -> Iterator[SigstoreStandIn]:
    with SigstoreStandIn(issuer="http://127.0.0.1:18082") as s:
        yield s


def _csr(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _post(standin: SigstoreStandIn, token: str | None, body: dict[str, Any]) -> httpx.Response:
    headers = {"Accept": "application/pem-certificate-chain"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.post(f"{standin.url}/api/v2/signingCert", json=body, headers=headers)


def _csr_body(pem: bytes) -> dict[str, object]:
    return {"certificateSigningRequest": base64.b64encode(pem).decode()}


def test_issues_chain_of_three(standin: SigstoreStandIn) -> None:
    response = _post(
        standin, standin.mint_token(), _csr_body(_csr(ec.generate_private_key(ec.SECP256R1())))
    )
    assert response.status_code == 200
    chain = response.json()["signedCertificateEmbeddedSct"]["chain"]["certificates"]
    leaf, intermediate, root = (x509.load_pem_x509_certificate(c.encode()) for c in chain)
    assert leaf.issuer == intermediate.subject and intermediate.issuer == root.subject
    assert (
        len(
            leaf.extensions.get_extension_for_class(
                x509.PrecertificateSignedCertificateTimestamps
            ).value
        )
        == 1
    )


def test_public_key_request_with_proof_of_possession(standin: SigstoreStandIn) -> None:
    token = standin.mint_token()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    subject = standin.token_claims(token)["sub"]
    good = key.sign(subject.encode(), ec.ECDSA(hashes.SHA256()))
    body: dict[str, Any] = {
        "publicKeyRequest": {
            "publicKey": {"algorithm": "ECDSA", "content": pem.decode()},
            "proofOfPossession": base64.b64encode(good).decode(),
        }
    }
    assert _post(standin, token, body).status_code == 200
    bad = key.sign(b"something else", ec.ECDSA(hashes.SHA256()))
    body["publicKeyRequest"]["proofOfPossession"] = base64.b64encode(bad).decode()
    response = _post(standin, token, body)
    assert response.status_code == 400
    assert response.json() == {"code": 3, "message": INVALID_SIGNATURE, "details": []}


def test_missing_bearer_is_unauthenticated(standin: SigstoreStandIn) -> None:
    response = _post(standin, None, _csr_body(_csr(ec.generate_private_key(ec.SECP256R1()))))
    assert response.status_code == 401
    assert response.json() == {"code": 16, "message": INVALID_CREDENTIALS, "details": []}


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "wrong audience",
        "unknown issuer",
        "garbage",
        "no ci_config_ref_uri",
        "not yet valid",
    ],
)
def test_bad_tokens_are_refused(standin: SigstoreStandIn, case: str) -> None:
    import time

    now = int(time.time())
    if case == "expired":
        token = standin.mint_token(issued_at=now - 600, lifetime=300)
    elif case == "wrong audience":
        token = standin.mint_token(audience="gitlab")
    elif case == "unknown issuer":
        token = standin.mint_token(iss="https://gitlab.com")
    elif case == "garbage":
        token = "not.a.jwt"
    elif case == "no ci_config_ref_uri":
        token = standin.mint_token(ci_config_ref_uri="")
    else:
        token = standin.mint_token(nbf=now + 600)
    before = len(standin.fulcio.issued)
    response = _post(standin, token, _csr_body(_csr(ec.generate_private_key(ec.SECP256R1()))))
    assert response.status_code == 401
    assert response.json() == {"code": 16, "message": IDENTITY_TOKEN_ERROR, "details": []}
    assert len(standin.fulcio.issued) == before


def test_csr_with_broken_signature_is_refused(standin: SigstoreStandIn) -> None:
    der = bytearray(
        x509.load_pem_x509_csr(_csr(ec.generate_private_key(ec.SECP256R1()))).public_bytes(
            serialization.Encoding.DER
        )
    )
    der[-1] ^= 0x01  # last byte of the ECDSA `s` integer: still DER, no longer a valid signature
    pem = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    response = _post(standin, standin.mint_token(), _csr_body(pem))
    assert response.status_code == 400
    assert response.json()["message"] == INVALID_SIGNATURE


def test_weak_rsa_key_is_refused(standin: SigstoreStandIn) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    response = _post(standin, standin.mint_token(), _csr_body(_csr(key)))
    assert response.status_code == 400
    assert response.json()["message"] == INSECURE_PUBLIC_KEY


def test_discovery_and_jwks_verify_tokens(standin: SigstoreStandIn) -> None:
    import jwt

    discovery = httpx.get(f"{standin.url}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == standin.issuer
    jwks = httpx.get(f"{standin.url}/oauth/discovery/keys").json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(standin.mint_token(), key, algorithms=["ES256"], audience="sigstore")
    assert claims["iss"] == standin.issuer
    chains = httpx.get(f"{standin.url}/api/v2/trustBundle").json()["chains"]
    assert len(chains[0]["certificates"]) == 2
