"""Fault toggles: Rekor 5xx for the next N requests, and the whole service stopped."""

from __future__ import annotations

import pytest
import requests
from sigstore._internal.rekor import RekorClientError
from sigstore.models import ClientTrustConfig
from sigstore.oidc import IdentityToken
from sigstore.sign import SigningContext
from sigstore.verify import Verifier, policy

from sandbox.sigstore import SigstoreStandIn


def _ctx(standin: SigstoreStandIn) -> SigningContext:
    return SigningContext.from_trust_config(
        ClientTrustConfig.from_json(standin.trust_config_json())
    )


def test_rekor_5xx_then_recovers(sigstore_standin_fresh: SigstoreStandIn) -> None:
    standin = sigstore_standin_fresh
    with _ctx(standin).signer(IdentityToken(standin.mint_token()), cache=True) as signer:
        standin.fail_rekor(2)
        for _ in range(2):
            with pytest.raises(RekorClientError):
                signer.sign_artifact(b"payload")
        bundle = signer.sign_artifact(b"payload")
    assert [status for _, path, status in standin.requests if path.startswith("/api/v1")] == [
        503,
        503,
        201,
    ]
    assert len(standin.rekor_entries) == 1
    identity = standin.expected_identity(standin.mint_token())
    Verifier(
        trusted_root=ClientTrustConfig.from_json(standin.trust_config_json()).trusted_root
    ).verify_artifact(b"payload", bundle, policy.Identity(identity=identity, issuer=standin.issuer))


def test_rekor_fail_first_constructor(sigstore_standin_factory: object) -> None:
    from collections.abc import Callable

    assert callable(sigstore_standin_factory)
    factory: Callable[..., SigstoreStandIn] = sigstore_standin_factory
    standin = factory(rekor_fail_first=1)
    with _ctx(standin).signer(IdentityToken(standin.mint_token()), cache=True) as signer:
        with pytest.raises(RekorClientError):
            signer.sign_artifact(b"a")
        signer.sign_artifact(b"a")
    assert standin.rekor_requests == 1  # the failed request never reached the log


def test_fulcio_5xx(sigstore_standin_fresh: SigstoreStandIn) -> None:
    from sigstore._internal.fulcio.client import FulcioClientError

    standin = sigstore_standin_fresh
    standin.fail_fulcio(1, status=502)
    signing = _ctx(standin).signer(IdentityToken(standin.mint_token()), cache=True)
    with pytest.raises(FulcioClientError):
        signing.__enter__()
    assert standin.fulcio_requests == 0
    with _ctx(standin).signer(IdentityToken(standin.mint_token()), cache=True) as signer:
        signer.sign_artifact(b"a")
    assert standin.fulcio_requests == 1


def test_stop_and_start_keep_state(sigstore_standin_fresh: SigstoreStandIn) -> None:
    standin = sigstore_standin_fresh
    ctx = _ctx(standin)
    with ctx.signer(IdentityToken(standin.mint_token()), cache=True) as signer:
        first = signer.sign_artifact(b"one")
        standin.stop()
        assert not standin.running
        with pytest.raises(requests.ConnectionError):
            signer.sign_artifact(b"two")
        standin.start()
        assert standin.running
        second = signer.sign_artifact(b"two")
    assert second.log_entry._inner.log_index == first.log_entry._inner.log_index + 1
    assert standin.url.endswith(f":{standin.port}")
