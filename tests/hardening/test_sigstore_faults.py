"""The sign step against a failing Sigstore: transient Fulcio/Rekor failures are retried under
one certificate; a Sigstore that stays down is one clear SigningError."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from poetry_gitlab_release.config.credentials import Secret
from poetry_gitlab_release.errors import EXIT_FAILURE, SigningError
from poetry_gitlab_release.release.artifacts import Artifact, load_artifacts
from poetry_gitlab_release.release.sign import sign_artifacts
from poetry_gitlab_release.signing.trust import load_trust_config
from sandbox.sigstore import SigstoreStandIn


@pytest.fixture
def sigstore() -> Iterator[SigstoreStandIn]:
    with SigstoreStandIn() as standin:
        yield standin


@pytest.fixture
def artifacts(tmp_path: Path) -> list[Artifact]:
    (tmp_path / "p-1.0-py3-none-any.whl").write_bytes(os.urandom(100))
    (tmp_path / "p-1.0.tar.gz").write_bytes(os.urandom(100))
    return load_artifacts(tmp_path, "p", "1.0")


def _sign(
    sigstore: SigstoreStandIn, artifacts: list[Artifact], retries: list[str]
) -> tuple[int, int, int]:
    token = sigstore.mint_token(project_path="demo-group/hello-package")
    fulcio, rekor = sigstore.fulcio_requests, sigstore.rekor_requests
    result = sign_artifacts(
        artifacts,
        Secret(token),
        trust_config=load_trust_config(sigstore.trust_config_path),
        in_ci=True,
        on_retry=lambda what, delay: retries.append(what),
        sleep=lambda seconds: None,
    )
    return result.certificates, sigstore.fulcio_requests - fulcio, sigstore.rekor_requests - rekor


def test_rekor_5xx_is_retried_under_one_certificate(
    sigstore: SigstoreStandIn, artifacts: list[Artifact]
) -> None:
    retries: list[str] = []
    sigstore.fail_rekor(2, status=502)
    certificates, fulcio, rekor = _sign(sigstore, artifacts, retries)
    assert (certificates, fulcio) == (1, 1)
    assert rekor == 4  # bundle + attestation for each of two artifacts
    assert len(retries) == 2
    assert all(what.startswith("Rekor (") for what in retries)


def test_fulcio_5xx_is_retried(sigstore: SigstoreStandIn, artifacts: list[Artifact]) -> None:
    retries: list[str] = []
    sigstore.fail_fulcio(1)
    certificates, fulcio, _ = _sign(sigstore, artifacts, retries)
    assert (certificates, fulcio) == (1, 1)
    assert [what.split(":")[0] for what in retries] == ["Fulcio"]


def test_sigstore_down_is_one_clear_error(
    sigstore: SigstoreStandIn, artifacts: list[Artifact]
) -> None:
    retries: list[str] = []
    token = sigstore.mint_token(project_path="demo-group/hello-package")
    sigstore.stop()
    with pytest.raises(SigningError) as caught:
        _sign(sigstore, artifacts, retries)
    message = str(caught.value)
    assert "cannot reach the Sigstore service at 127.0.0.1:" in message
    assert "nothing was published" in message
    assert "\n" not in message
    assert token not in message
    assert caught.value.exit_code == EXIT_FAILURE
    assert len(retries) == 4
    assert not any(
        path.name.endswith(".sigstore.json") for path in artifacts[0].path.parent.iterdir()
    )


def test_rekor_refusing_for_good_is_not_retried(
    sigstore: SigstoreStandIn, artifacts: list[Artifact]
) -> None:
    retries: list[str] = []
    sigstore.fail_rekor(1, status=400)
    with pytest.raises(SigningError, match="signing failed"):
        _sign(sigstore, artifacts, retries)
    assert retries == []
