"""Sign with the real sigstore-python client against the stand-in and verify."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from sigstore._internal.fulcio.client import FulcioClientError
from sigstore.errors import VerificationError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import IdentityError, IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from sandbox.sigstore import SigstoreStandIn

GITLAB = "http://127.0.0.1:18080"
PROJECT = "demo-group/hello-package"
IDENTITY = "https://127.0.0.1:18080/demo-group/hello-package//.gitlab-ci.yml@refs/tags/v1.0.0"
FILES = {"a.whl": b"wheel bytes", "a.tar.gz": b"sdist bytes", "notes.txt": b"release notes"}

Signed = tuple[str, dict[str, Bundle], int]


@pytest.fixture(scope="module")
def standin() -> Iterator[SigstoreStandIn]:
    with SigstoreStandIn(issuer=GITLAB) as s:
        yield s


def _context(standin: SigstoreStandIn) -> SigningContext:
    return SigningContext.from_trust_config(
        ClientTrustConfig.from_json(standin.trust_config_json())
    )


def _sign(
    standin: SigstoreStandIn, token: IdentityToken | str, files: dict[str, bytes]
) -> dict[str, Bundle]:
    identity = token if isinstance(token, IdentityToken) else IdentityToken(token)
    with _context(standin).signer(identity, cache=True) as signer:
        return {name: signer.sign_artifact(data) for name, data in files.items()}


def _verifier(standin: SigstoreStandIn) -> Verifier:
    return Verifier(
        trusted_root=ClientTrustConfig.from_json(standin.trust_config_json()).trusted_root
    )


@pytest.fixture(scope="module")
def signed(standin: SigstoreStandIn) -> Signed:
    before = standin.fulcio_requests
    token = standin.mint_token()
    bundles = _sign(standin, token, FILES)
    # Consumers read `{file}.sigstore.json`: go through JSON.
    reloaded = {name: Bundle.from_json(b.to_json()) for name, b in bundles.items()}
    return token, reloaded, standin.fulcio_requests - before


def _ext(cert: x509.Certificate, suffix: str) -> bytes:
    oid = x509.ObjectIdentifier(f"1.3.6.1.4.1.57264.1.{suffix}")
    value = cert.extensions.get_extension_for_oid(oid).value
    assert isinstance(value, x509.UnrecognizedExtension)
    return value.value


def test_three_files_one_certificate_request(standin: SigstoreStandIn, signed: Signed) -> None:
    _, bundles, fulcio_calls = signed
    assert fulcio_calls == 1
    assert len({b.signing_certificate.serial_number for b in bundles.values()}) == 1
    assert len({b.log_entry._inner.log_index for b in bundles.values()}) == 3
    assert {e.kind for e in standin.rekor_entries} >= {"hashedrekord"}


def test_leaf_profile(standin: SigstoreStandIn, signed: Signed) -> None:
    token, bundles, _ = signed
    cert = next(iter(bundles.values())).signing_certificate
    claims = standin.token_claims(token)
    assert standin.expected_identity(token) == IDENTITY
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [IDENTITY]
    assert cert.subject == x509.Name([])
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() == 600
    assert _ext(cert, "1") == GITLAB.encode()  # legacy issuer: raw bytes
    assert _ext(cert, "8") == b"\x0c" + bytes([len(GITLAB)]) + GITLAB.encode()  # UTF8String
    expected = {
        "9": IDENTITY,
        "10": claims["ci_config_sha"],
        "11": "gitlab-hosted",
        "12": f"{GITLAB}/{PROJECT}",
        "13": claims["sha"],
        "14": "refs/tags/v1.0.0",
        "15": "1001",
        "16": f"{GITLAB}/demo-group",
        "17": claims["namespace_id"],
        "18": IDENTITY,
        "19": claims["ci_config_sha"],
        "20": "push",
        "21": f"{GITLAB}/{PROJECT}/-/jobs/{claims['job_id']}",
        "22": "private",
    }
    for suffix, value in expected.items():
        assert _ext(cert, suffix)[2:].decode() == value, suffix


def test_verify_with_identity_policy(standin: SigstoreStandIn, signed: Signed) -> None:
    _, bundles, _ = signed
    verifier = _verifier(standin)
    for name, bundle in bundles.items():
        verifier.verify_artifact(
            FILES[name], bundle, policy.Identity(identity=IDENTITY, issuer=GITLAB)
        )


def test_verify_with_gitlab_extension_policies(standin: SigstoreStandIn, signed: Signed) -> None:
    token, bundles, _ = signed
    claims = standin.token_claims(token)
    gitlab_policy = policy.AllOf(
        [
            policy.OIDCIssuerV2(GITLAB),
            policy.OIDCBuildSignerURI(IDENTITY),
            policy.OIDCBuildConfigURI(IDENTITY),
            policy.OIDCSourceRepositoryURI(f"{GITLAB}/{PROJECT}"),
            policy.OIDCSourceRepositoryRef("refs/tags/v1.0.0"),
            policy.OIDCSourceRepositoryDigest(claims["sha"]),
            policy.OIDCSourceRepositoryIdentifier("1001"),
            policy.OIDCRunnerEnvironment("gitlab-hosted"),
            policy.OIDCBuildTrigger("push"),
            policy.OIDCSourceRepositoryVisibility("private"),
        ]
    )
    verifier = _verifier(standin)
    for name, bundle in bundles.items():
        verifier.verify_artifact(FILES[name], bundle, gitlab_policy)


@pytest.mark.parametrize(
    ("case", "verification_policy"),
    [
        (
            "wrong ref",
            policy.Identity(identity=IDENTITY.replace("v1.0.0", "v2.0.0"), issuer=GITLAB),
        ),
        ("wrong ref (extension)", policy.OIDCSourceRepositoryRef("refs/heads/main")),
        (
            "wrong project",
            policy.Identity(identity=IDENTITY.replace("hello-package", "other"), issuer=GITLAB),
        ),
        ("wrong project (extension)", policy.OIDCSourceRepositoryURI(f"{GITLAB}/demo-group/other")),
        ("wrong issuer", policy.Identity(identity=IDENTITY, issuer="https://gitlab.com")),
        ("trailing slash issuer", policy.Identity(identity=IDENTITY, issuer=GITLAB + "/")),
        (
            "single slash",
            policy.Identity(identity=IDENTITY.replace("//.gitlab", "/.gitlab"), issuer=GITLAB),
        ),
        ("wrong issuer (v2)", policy.OIDCIssuerV2("https://gitlab.com")),
    ],
)
def test_policy_mismatch_fails(
    standin: SigstoreStandIn,
    signed: Signed,
    case: str,
    verification_policy: policy.VerificationPolicy,
) -> None:
    _, bundles, _ = signed
    with pytest.raises(VerificationError):
        _verifier(standin).verify_artifact(FILES["a.whl"], bundles["a.whl"], verification_policy)


def test_tampered_artifact_fails(standin: SigstoreStandIn, signed: Signed) -> None:
    _, bundles, _ = signed
    with pytest.raises(VerificationError, match="digest"):
        _verifier(standin).verify_artifact(
            b"wheel bytes!", bundles["a.whl"], policy.Identity(identity=IDENTITY, issuer=GITLAB)
        )


def test_swapped_bundle_fails(standin: SigstoreStandIn, signed: Signed) -> None:
    _, bundles, _ = signed
    with pytest.raises(VerificationError):
        _verifier(standin).verify_artifact(
            FILES["a.whl"], bundles["a.tar.gz"], policy.Identity(identity=IDENTITY, issuer=GITLAB)
        )


def test_production_trusted_root_rejects(signed: Signed, sigstore_isolated_cache: Path) -> None:
    _, bundles, _ = signed
    with pytest.raises(VerificationError):
        Verifier.production(offline=True).verify_artifact(
            FILES["a.whl"], bundles["a.whl"], policy.Identity(identity=IDENTITY, issuer=GITLAB)
        )


def test_other_standin_root_rejects(signed: Signed) -> None:
    _, bundles, _ = signed
    with SigstoreStandIn(issuer=GITLAB) as other, pytest.raises(VerificationError):
        _verifier(other).verify_artifact(
            FILES["a.whl"], bundles["a.whl"], policy.Identity(identity=IDENTITY, issuer=GITLAB)
        )


def test_branch_custom_config_other_project(standin: SigstoreStandIn) -> None:
    token = standin.mint_token(
        project_path="other-group/sub/tool",
        project_id=2002,
        ref="main",
        ref_type="branch",
        ci_config_path="ci/release.yml",
    )
    identity = "https://127.0.0.1:18080/other-group/sub/tool//ci/release.yml@refs/heads/main"
    assert standin.expected_identity(token) == identity
    bundle = _sign(standin, token, {"x": b"x"})["x"]
    verifier = _verifier(standin)
    verifier.verify_artifact(
        b"x",
        bundle,
        policy.AllOf(
            [
                policy.Identity(identity=identity, issuer=GITLAB),
                policy.OIDCSourceRepositoryRef("refs/heads/main"),
                policy.OIDCSourceRepositoryOwnerURI(f"{GITLAB}/other-group/sub"),
            ]
        ),
    )
    with pytest.raises(VerificationError):
        verifier.verify_artifact(b"x", bundle, policy.Identity(identity=IDENTITY, issuer=GITLAB))


def test_large_input_as_prehash(standin: SigstoreStandIn) -> None:
    from sigstore.hashes import Hashed
    from sigstore_models.common.v1 import HashAlgorithm

    data = b"0123456789" * 100_000
    hashed = Hashed(digest=hashlib.sha256(data).digest(), algorithm=HashAlgorithm.SHA2_256)
    with _context(standin).signer(IdentityToken(standin.mint_token()), cache=True) as signer:
        bundle = signer.sign_artifact(hashed)
    _verifier(standin).verify_artifact(
        data, bundle, policy.Identity(identity=IDENTITY, issuer=GITLAB)
    )


def test_expired_token_fails_at_fulcio(standin: SigstoreStandIn) -> None:
    import time

    from sigstore._internal.fulcio.client import FulcioClient

    # Valid when the client reads it, expired (by Fulcio's clock, no leeway) when posted.
    now = time.time()
    exp = int(now) + 1
    start = int(now)
    identity = IdentityToken(standin.mint_token(issued_at=exp - 60, lifetime=60))
    time.sleep(exp - now + 0.05)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .sign(key, hashes.SHA256())
    )
    before = standin.fulcio_requests
    with pytest.raises(FulcioClientError):
        FulcioClient(standin.url).signing_cert.post(csr, identity)
    assert standin.fulcio_requests == before + 1
    # A long-expired token is refused by the client before any request.
    with pytest.raises(IdentityError):
        IdentityToken(standin.mint_token(issued_at=start - 4000, lifetime=300))


def test_other_audience_fails_at_fulcio(standin: SigstoreStandIn) -> None:
    token = standin.mint_token(audience="pypi")
    with pytest.raises(IdentityError):
        IdentityToken(token)  # the client's own audience check
    before = standin.fulcio_requests
    with pytest.raises(FulcioClientError):
        _sign(standin, IdentityToken(token, client_id="pypi"), {"x": b"x"})
    assert standin.fulcio_requests == before + 1


def test_list_audience_containing_sigstore_is_accepted(standin: SigstoreStandIn) -> None:
    token = standin.mint_token(audience=["sigstore", "other"])
    bundle = _sign(standin, token, {"x": b"x"})["x"]
    _verifier(standin).verify_artifact(
        b"x", bundle, policy.Identity(identity=IDENTITY, issuer=GITLAB)
    )


def test_token_from_unknown_issuer_fails_at_fulcio(standin: SigstoreStandIn) -> None:
    with SigstoreStandIn(issuer="https://gitlab.example.com") as other:
        token = other.mint_token()
    with pytest.raises(FulcioClientError):
        _sign(standin, token, {"x": b"x"})


def test_token_signed_by_another_key_fails_at_fulcio(standin: SigstoreStandIn) -> None:
    with SigstoreStandIn(issuer=GITLAB) as other:
        forged = other.mint_token()  # same iss, different signing key
    with pytest.raises(FulcioClientError):
        _sign(standin, forged, {"x": b"x"})
