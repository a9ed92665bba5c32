"""Sign with the real sigstore-python client against the stand-in and verify."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sigstore.errors import VerificationError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from sandbox.sigstore import SigstoreStandIn

GITLAB = "http://127.0.0.1:18080"
FILES = {"a.whl": b"wheel bytes", "a.tar.gz": b"sdist bytes", "notes.txt": b"release notes"}


@pytest.fixture(scope="module")
def standin() -> object:
    with SigstoreStandIn(issuer=GITLAB) as s:
        yield s


def _sign(standin: SigstoreStandIn, token: str, files: dict[str, bytes]) -> dict[str, Bundle]:
    ctx = SigningContext.from_trust_config(ClientTrustConfig.from_json(standin.trust_config_json()))
    with ctx.signer(IdentityToken(token), cache=True) as signer:
        return {name: signer.sign_artifact(data) for name, data in files.items()}


def _verifier(standin: SigstoreStandIn) -> Verifier:
    return Verifier(trusted_root=ClientTrustConfig.from_json(standin.trust_config_json()).trusted_root)


IDENTITY = "https://127.0.0.1:18080/demo-group/hello-package//.gitlab-ci.yml@refs/tags/v1.0.0"


@pytest.fixture(scope="module")
def signed(standin: SigstoreStandIn) -> tuple[str, dict[str, Bundle], int]:
    before = standin.fulcio_requests
    token = standin.mint_token()
    bundles = _sign(standin, token, FILES)
    return token, bundles, standin.fulcio_requests - before


def test_three_files_one_certificate(signed: tuple[str, dict[str, Bundle], int]) -> None:
    _, bundles, fulcio_calls = signed
    assert fulcio_calls == 1
    certs = {b.signing_certificate.serial_number for b in bundles.values()}
    assert len(certs) == 1
    assert len({b.log_entry._inner.log_index for b in bundles.values()}) == 3


def test_identity_string(standin: SigstoreStandIn, signed: tuple[str, dict[str, Bundle], int]) -> None:
    token, _, _ = signed
    assert standin.expected_identity(token) == IDENTITY


def test_verify_identity_policy(standin: SigstoreStandIn, signed: tuple[str, dict[str, Bundle], int]) -> None:
    _, bundles, _ = signed
    verifier = _verifier(standin)
    for name, bundle in bundles.items():
        # Through JSON, as a consumer would read `{file}.sigstore.json`.
        reloaded = Bundle.from_json(bundle.to_json())
        verifier.verify_artifact(FILES[name], reloaded, policy.Identity(identity=IDENTITY, issuer=GITLAB))
