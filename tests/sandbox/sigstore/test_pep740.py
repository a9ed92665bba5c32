"""PEP 740: pypi-attestations signs through the real Signer; the DSSE bundle verifies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from pypi_attestations import Attestation, Distribution, GitLabPublisher
from sigstore.dsse import Statement
from sigstore.errors import VerificationError
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from sandbox.sigstore import SigstoreStandIn


def test_attestation_sign_and_verify_dsse(
    sigstore_standin: SigstoreStandIn, tmp_path: Path
) -> None:
    standin = sigstore_standin  # issuer https://gitlab.com, so GitLabPublisher's policy applies
    dist_path = tmp_path / "hello_package-1.0.0.tar.gz"
    dist_path.write_bytes(b"sdist contents")
    dist = Distribution.from_file(dist_path)
    trust = ClientTrustConfig.from_json(standin.trust_config_json())
    token = standin.mint_token(ref="main", ref_type="branch")
    with SigningContext.from_trust_config(trust).signer(IdentityToken(token), cache=True) as signer:
        attestation = Attestation.sign(signer, dist)
    attestation = Attestation.model_validate_json(attestation.model_dump_json())
    bundle = attestation.to_bundle()
    body = json.loads(bundle.log_entry._inner.canonicalized_body)
    assert body["kind"] == "dsse"
    assert set(body["spec"]) == {"envelopeHash", "payloadHash", "signatures"}

    verifier = Verifier(trusted_root=trust.trusted_root)
    identity = "https://gitlab.com/demo-group/hello-package//.gitlab-ci.yml@refs/heads/main"
    payload_type, payload = verifier.verify_dsse(
        bundle, policy.Identity(identity=identity, issuer="https://gitlab.com")
    )
    assert payload_type == "application/vnd.in-toto+json"
    statement = Statement(payload)
    subject = json.loads(payload)["subject"][0]
    assert subject == {
        "name": dist.name,
        "digest": {"sha256": hashlib.sha256(b"sdist contents").hexdigest()},
    }
    assert json.loads(payload)["predicateType"] == "https://docs.pypi.org/attestations/publish/v1"
    assert statement is not None

    publisher_policy = GitLabPublisher(
        repository="demo-group/hello-package", workflow_filepath=".gitlab-ci.yml"
    )._as_policy()
    verifier.verify_dsse(bundle, publisher_policy)
    assert attestation.certificate_claims["1.3.6.1.4.1.57264.1.14"] == "refs/heads/main"

    wrong = GitLabPublisher(
        repository="demo-group/other", workflow_filepath=".gitlab-ci.yml"
    )._as_policy()
    with pytest.raises(VerificationError):
        verifier.verify_dsse(bundle, wrong)
