"""Sign and verify against the Sigstore stand-in, in process (no poetry, no GitLab)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from poetry_gitlab_release.config.credentials import Secret
from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import ConfigError, SigningError, VerificationError
from poetry_gitlab_release.files import sha256_file
from poetry_gitlab_release.release.artifacts import Artifact, load_artifacts
from poetry_gitlab_release.release.sign import check_identity_token, sign_artifacts
from poetry_gitlab_release.release.verify import signer_from_settings, verify_artifacts
from poetry_gitlab_release.signing.identity import ExpectedIdentity
from poetry_gitlab_release.signing.trust import load_trust_config
from sandbox.sigstore import SigstoreStandIn

ISSUER = "http://127.0.0.1:8929"
PROJECT = "demo-group/hello-package"


@pytest.fixture
def standin(
    sigstore_standin_factory: Callable[..., SigstoreStandIn], sigstore_isolated_cache: Path
) -> SigstoreStandIn:
    return sigstore_standin_factory(issuer=ISSUER)


def make_dist(directory: Path, count: int = 2) -> list[Artifact]:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "demo_pkg-1.0.0.tar.gz").write_bytes(b"sdist bytes" * 1000)
    for index in range(count - 1):
        (directory / f"demo_pkg-1.0.0-py{index + 3}-none-any.whl").write_bytes(b"w%d" % index)
    return load_artifacts(directory, "demo-pkg", "1.0.0")


def expected(ref: str = "refs/tags/v1.0.0") -> ExpectedIdentity:
    return ExpectedIdentity.for_gitlab(server_url=ISSUER, project_path=PROJECT, ref=ref)


def sign(
    standin: SigstoreStandIn,
    artifacts: list[Artifact],
    *,
    attestations: bool = True,
    cosign_compat: bool = False,
) -> None:
    token = standin.mint_token(project_path=PROJECT, ref="v1.0.0", server_url=ISSUER)
    sign_artifacts(
        artifacts,
        Secret(token),
        trust_config=load_trust_config(standin.trust_config_path),
        in_ci=True,
        attestations=attestations,
        cosign_compat=cosign_compat,
    )


def test_one_certificate_for_all_artifacts_and_every_file_written(
    standin: SigstoreStandIn, tmp_path: Path
) -> None:
    artifacts = make_dist(tmp_path / "dist", count=4)
    sign(standin, artifacts, cosign_compat=True)
    assert standin.fulcio_requests == 1
    for artifact in artifacts:
        for suffix in (".sigstore.json", ".publish.attestation", ".sig", ".crt"):
            assert artifact.sidecar(suffix).is_file()
    result = verify_artifacts(
        artifacts, expected(), trust_config=load_trust_config(standin.trust_config_path)
    )
    assert [item.artifact.name for item in result.verified] == [a.name for a in artifacts]
    assert all(item.attestation is not None for item in result.verified)


def test_cosign_files_are_base64_like_cosign_sign_blob(
    standin: SigstoreStandIn, tmp_path: Path
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    (artifact,) = make_dist(tmp_path / "dist", count=1)
    sign(standin, [artifact], cosign_compat=True, attestations=False)
    signature = artifact.sidecar(".sig").read_bytes()
    certificate = artifact.sidecar(".crt").read_bytes()
    assert not signature.endswith(b"\n") and not certificate.endswith(b"\n")
    pem = base64.b64decode(certificate)
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----")
    public_key = x509.load_pem_x509_certificate(pem).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(
        base64.b64decode(signature), artifact.path.read_bytes(), ec.ECDSA(hashes.SHA256())
    )
    assert not artifact.sidecar(".publish.attestation").exists()


def test_attestation_is_a_valid_pep740_object(standin: SigstoreStandIn, tmp_path: Path) -> None:
    from pypi_attestations import Attestation, Distribution
    from sigstore.verify import Verifier

    (artifact,) = make_dist(tmp_path / "dist", count=1)
    sign(standin, [artifact])
    attestation = Attestation.model_validate_json(
        artifact.sidecar(".publish.attestation").read_bytes()
    )
    assert attestation.version == 1
    verifier = Verifier(trusted_root=load_trust_config(standin.trust_config_path).trusted_root)
    payload_type, payload = verifier.verify_dsse(attestation.to_bundle(), expected().to_policy())
    statement = json.loads(payload)
    assert payload_type == "application/vnd.in-toto+json"
    assert statement["predicateType"] == "https://docs.pypi.org/attestations/publish/v1"
    assert statement["subject"] == [{"name": artifact.name, "digest": {"sha256": artifact.sha256}}]
    assert Distribution.from_file(artifact.path).digest == artifact.sha256


def test_verify_names_file_and_field(standin: SigstoreStandIn, tmp_path: Path) -> None:
    artifacts = make_dist(tmp_path / "dist")
    sign(standin, artifacts)
    trust = load_trust_config(standin.trust_config_path)
    with pytest.raises(VerificationError) as caught:
        verify_artifacts(artifacts, expected("refs/heads/main"), trust_config=trust)
    message = str(caught.value)
    assert message.startswith("demo_pkg-1.0.0.tar.gz.sigstore.json does not match")
    assert "ref is refs/tags/v1.0.0, expected refs/heads/main" in message


def test_a_changed_artifact_does_not_verify(standin: SigstoreStandIn, tmp_path: Path) -> None:
    artifacts = make_dist(tmp_path / "dist")
    sign(standin, artifacts)
    artifacts[0].path.write_bytes(b"tampered")
    changed = load_artifacts(tmp_path / "dist", "demo-pkg", "1.0.0")
    with pytest.raises(
        VerificationError, match=r"demo_pkg-1.0.0.tar.gz.sigstore.json does not verify"
    ):
        verify_artifacts(
            changed, expected(), trust_config=load_trust_config(standin.trust_config_path)
        )


def test_a_missing_bundle_says_to_sign_first(standin: SigstoreStandIn, tmp_path: Path) -> None:
    artifacts = make_dist(tmp_path / "dist")
    with pytest.raises(VerificationError, match="no signature") as caught:
        verify_artifacts(
            artifacts, expected(), trust_config=load_trust_config(standin.trust_config_path)
        )
    assert caught.value.hint == "run the sign step first"


def _jwt(claims: dict[str, object]) -> Secret:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return Secret(f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJlLXBhcnQtbG9uZw")


def test_token_checks_never_show_the_token() -> None:
    with pytest.raises(SigningError) as missing:
        check_identity_token(None, in_ci=True)
    assert "id_tokens:" in str(missing.value) and "aud: sigstore" in str(missing.value)
    with pytest.raises(SigningError, match="--identity-token"):
        check_identity_token(None, in_ci=False)
    expired = _jwt({"aud": "sigstore", "exp": int(time.time()) - 60})
    with pytest.raises(SigningError, match="expired at") as caught:
        check_identity_token(expired, in_ci=True)
    assert expired.reveal() not in str(caught.value)
    with pytest.raises(SigningError, match="audience is 'other'"):
        check_identity_token(_jwt({"aud": "other", "exp": time.time() + 60}), in_ci=True)
    with pytest.raises(SigningError, match="not a JWT"):
        check_identity_token(Secret("plainly-not-a-jwt"), in_ci=True)
    listed = _jwt({"aud": ["sigstore", "other"], "exp": time.time() + 60})
    assert check_identity_token(listed, in_ci=True) == listed.reveal()


def test_trust_config_errors_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "trust.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError, match="not a Sigstore ClientTrustConfig"):
        load_trust_config(bad)


def test_expected_identity_from_ci_facts() -> None:
    env = {
        "CI_SERVER_URL": "https://gitlab.example.com:8443",
        "CI_PROJECT_PATH": "group/sub/proj",
        "CI_PROJECT_ID": "7",
        "CI_COMMIT_TAG": "v1.0.0",
        "CI_COMMIT_REF_NAME": "v1.0.0",
        "CI_CONFIG_PATH": "ci/release.yml",
    }
    found = signer_from_settings(resolve_settings({}, env))
    assert found.identity == (
        "https://gitlab.example.com:8443/group/sub/proj//ci/release.yml@refs/tags/v1.0.0"
    )
    assert found.issuer == "https://gitlab.example.com:8443"
    assert found.repository_uri == "https://gitlab.example.com:8443/group/sub/proj"
    assert found.ref == "refs/tags/v1.0.0"
    branch = {**env, "CI_COMMIT_REF_NAME": "main"}
    del branch["CI_COMMIT_TAG"]
    assert signer_from_settings(resolve_settings({}, branch)).ref == "refs/heads/main"
    overridden = signer_from_settings(
        resolve_settings({"identity": "https://x//y@z", "issuer": "https://issuer.example"}, env),
        source_repository="https://issuer.example/mirror",
        ref="refs/tags/v2",
    )
    assert (overridden.identity, overridden.issuer) == ("https://x//y@z", "https://issuer.example")
    assert (overridden.repository_uri, overridden.ref) == (
        "https://issuer.example/mirror",
        "refs/tags/v2",
    )
    with pytest.raises(ConfigError, match="full ref"):
        signer_from_settings(resolve_settings({}, env), ref="v2")
    with pytest.raises(ConfigError, match="no tag or branch"):
        signer_from_settings(resolve_settings({}, {"CI_PROJECT_PATH": "g/p"}))


def test_hashing_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    with path.open("wb") as handle:
        for _ in range(5):
            handle.write(b"x" * (1 << 20))
    import hashlib

    digest = sha256_file(path)
    assert digest.size == 5 << 20
    assert digest.sha256 == hashlib.sha256(b"x" * (5 << 20)).hexdigest()


def test_a_missing_token_is_reported_before_any_trust_root_is_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sigstore.models

    def no_network() -> None:
        raise AssertionError("the public trust root must not be fetched without a token")

    monkeypatch.setattr(sigstore.models.ClientTrustConfig, "production", no_network)
    with pytest.raises(SigningError, match="SIGSTORE_ID_TOKEN is not set in this job") as caught:
        sign_artifacts(make_dist(tmp_path), None, trust_config=None, in_ci=True)
    assert "aud: sigstore" in str(caught.value)
