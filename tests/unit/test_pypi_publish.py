"""poetry_gitlab_release.pypi against the PyPI stand-in: exchange, upload, skip, refusals."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    ConflictError,
    GitlabReleaseError,
)
from poetry_gitlab_release.pypi.attestations import load_attestation, pin_rekor_v1
from poetry_gitlab_release.pypi.index import IndexConnection, IndexURLs
from poetry_gitlab_release.pypi.integrity import fetch_provenance
from poetry_gitlab_release.pypi.publish import IndexResult, publish_release
from poetry_gitlab_release.pypi.trusted_publishing import TrustedPublishingError
from poetry_gitlab_release.pypi.upload import (
    AttestationRefusedError,
    ReleaseClosedError,
    upload_file,
)
from sandbox.pypi import PyPIStandIn
from tests.sandbox.gitlab.dists import make_sdist, make_wheel


@pytest.fixture
def dists(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "dist"
    directory.mkdir()
    return [make_wheel(directory), make_sdist(directory)]


def connect(pypi: PyPIStandIn) -> IndexConnection:
    return IndexConnection(IndexURLs.from_upload_url(pypi.upload_url), sleep=lambda _: None)


def publish(pypi: PyPIStandIn, files: list[Path], **kwargs: Any) -> IndexResult:
    kwargs.setdefault("api_token", None)
    kwargs.setdefault("in_ci", True)
    with connect(pypi) as connection:
        return publish_release(
            connection, name="hello-package", version="0.1.0", files=files, **kwargs
        )


def test_urls_of_pypi_testpypi_and_other_indexes() -> None:
    pypi = IndexURLs.from_upload_url("pypi")
    assert (pypi.upload, pypi.read_origin) == (
        "https://upload.pypi.org/legacy/",
        "https://pypi.org",
    )
    assert pypi.mint_token == "https://upload.pypi.org/_/oidc/mint-token"
    assert pypi.release_json("a", "1") == "https://pypi.org/pypi/a/1/json"
    test = IndexURLs.from_upload_url("https://test.pypi.org/legacy/")
    assert test.read_origin == "https://test.pypi.org"
    other = IndexURLs.from_upload_url("https://pypi.example.com/upload")
    assert (other.upload, other.read_origin) == (
        "https://pypi.example.com/upload/",
        "https://pypi.example.com",
    )
    with pytest.raises(ConfigError, match="plain http"):
        IndexURLs.from_upload_url("http://pypi.example.com/legacy/")
    with pytest.raises(ConfigError, match="not an http"):
        IndexURLs.from_upload_url("ftp://example.com/")


def test_trusted_publishing_uploads_with_attestations_once_then_skips(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    dists: list[Path],
) -> None:
    pep740_signer(*dists)
    seen: list[str] = []
    first = publish(
        pypi_standin, dists, id_token=pypi_id_token(), on_file=lambda f: seen.append(f.status)
    )
    assert [f.status for f in first.files] == ["uploaded", "uploaded"] == seen
    assert first.credential == "trusted-publishing"
    assert pypi_standin.exchanges == 1
    assert pypi_standin.oidc.burned == 1  # the minted token is burned after the uploads
    assert all(f.provenance is not None for f in pypi_standin.files("hello-package"))
    assert first.files[0].provenance_url == pypi_standin.provenance_url(
        "hello-package", "0.1.0", dists[0].name
    )

    again = publish(pypi_standin, dists, id_token=pypi_id_token())
    assert [f.status for f in again.files] == ["skipped", "skipped"]
    assert pypi_standin.exchanges == 1  # nothing to upload: the ID token is not even exchanged
    assert pypi_standin.uploads == 2

    with connect(pypi_standin) as connection:
        provenance = fetch_provenance(connection, "hello-package", "0.1.0", dists[0].name)
    assert provenance is not None
    assert provenance["attestation_bundles"][0]["publisher"]["repository"] == (
        "demo-group/hello-package"
    )
    assert json.loads(json.dumps(provenance["attestation_bundles"][0]["attestations"][0])) == (
        load_attestation(dists[0])
    )


def test_a_different_file_under_our_name_stops_before_any_upload(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    dists: list[Path],
    tmp_path: Path,
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    theirs = make_sdist(other)
    theirs.write_bytes(theirs.read_bytes() + b"\0")
    pep740_signer(theirs)
    publish(pypi_standin, [theirs], id_token=pypi_id_token())
    pep740_signer(*dists)
    with pytest.raises(ConflictError) as caught:
        publish(pypi_standin, dists, id_token=pypi_id_token())
    assert dists[1].name in str(caught.value)
    assert "nothing was uploaded" in str(caught.value)
    assert [f.filename for f in pypi_standin.files("hello-package")] == [theirs.name]


def test_credential_problems_are_one_line_with_the_fix(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    dists: list[Path],
) -> None:
    pep740_signer(*dists)
    with pytest.raises(ConfigError) as missing:
        publish(pypi_standin, dists, id_token=None)
    assert "no PyPI credential" in str(missing.value)
    assert "id_tokens: {PYPI_ID_TOKEN: {aud: pypi}}" in str(missing.value)

    with pytest.raises(ConfigError) as audience:
        publish(pypi_standin, dists, id_token=pypi_id_token(audience="sigstore"))
    assert "has audience 'sigstore', but the index expects 'pypi'" in str(audience.value)

    with pytest.raises(ConfigError) as expired:
        publish(pypi_standin, dists, id_token=pypi_id_token(lifetime=-60))
    assert "PYPI_ID_TOKEN expired at" in str(expired.value)

    with pytest.raises(TrustedPublishingError) as publisher:
        publish(pypi_standin, dists, id_token=pypi_id_token(ci_config_path="release.yml"))
    text = str(publisher.value)
    assert "invalid-publisher: valid token, but no corresponding publisher" in text
    assert "CI file release.yml" in text
    assert f"{pypi_standin.url}/manage/project/hello-package/settings/publishing/" in text

    token = pypi_id_token()
    with connect(pypi_standin) as connection:
        from poetry_gitlab_release.pypi.trusted_publishing import exchange

        exchange(connection, token, project="hello-package")
        with pytest.raises(TrustedPublishingError, match="exchanged once"):
            exchange(connection, token, project="hello-package")
    assert pypi_standin.uploads == 0
    for error in (missing, audience, expired, publisher):
        assert "\n" not in str(error.value)


def test_refusals_from_the_upload(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    dists: list[Path],
) -> None:
    pep740_signer(*dists, project_path="demo-group/other")  # not the trusted publisher's
    with pytest.raises(AttestationRefusedError) as refused:
        publish(pypi_standin, dists, id_token=pypi_id_token())
    assert "Invalid attestations supplied during upload: Could not verify" in str(refused.value)
    assert "signed on https://gitlab.com by the trusted publisher" in str(refused.value)
    assert pypi_standin.oidc.burned == 1  # burned even when an upload fails

    # A wheel with metadata but no WHEEL file: the index says why it refuses it.
    import zipfile

    broken = dists[0]
    with zipfile.ZipFile(broken) as whole:
        kept = {n: whole.read(n) for n in whole.namelist() if not n.endswith("/WHEEL")}
    with zipfile.ZipFile(broken, "w") as archive:
        for member, content in kept.items():
            archive.writestr(member, content)
    pep740_signer(broken)
    with pytest.raises(ApiError) as invalid:
        publish(pypi_standin, [broken], id_token=pypi_id_token())
    assert (
        f"refused {broken.name}: Invalid distribution file. WHEEL not found at "
        "hello_package-0.1.0.dist-info/WHEEL"
    ) in str(invalid.value)

    broken.write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match=f"cannot read the metadata of {broken.name}"):
        publish(pypi_standin, [broken], id_token=None, api_token="pypi-unused")


def test_the_14_day_rule_is_said_once_and_not_retried(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    dists: list[Path],
) -> None:
    wheel, sdist = dists
    pep740_signer(wheel, sdist)
    publish(pypi_standin, [wheel], id_token=pypi_id_token())
    pypi_standin.age_release("hello-package", "0.1.0", days=20)
    import time

    later = time.time() + 20 * 86400  # what the JSON API's upload time then says
    with pytest.raises(ReleaseClosedError, match="older than 14 days"):
        publish(pypi_standin, dists, id_token=pypi_id_token(), now=later)
    assert pypi_standin.exchanges == 1  # refused before exchanging

    # The index's own answer, when it is the one to say so:
    api_token = pypi_standin.api_token("hello-package")
    posts_before = sum(1 for r in pypi_standin.requests if r[0] == "POST")
    with connect(pypi_standin) as connection, pytest.raises(ReleaseClosedError) as closed:
        upload_file(connection, sdist, token=api_token, attestation=None)
    assert str(closed.value).startswith(
        f"127.0.0.1:{pypi_standin.port} refused {sdist.name}: Uploading new files to releases "
        "older than 14 days is not allowed."
    )
    assert sum(1 for r in pypi_standin.requests if r[0] == "POST") == posts_before + 1
    assert api_token not in str(closed.value)


def test_api_token_fallback_sends_no_attestation(
    pypi_standin: PyPIStandIn, dists: list[Path]
) -> None:
    token = pypi_standin.api_token("hello-package")
    result = publish(pypi_standin, dists, id_token=None, api_token=token)
    assert result.credential == "api-token"
    assert [f.attestation for f in result.files] == [False, False]
    assert pypi_standin.exchanges == 0
    assert all(f.provenance is None for f in pypi_standin.files("hello-package"))


def test_rekor_v2_attestations_are_refused_before_upload_and_v1_is_pinned(
    pep740_signer: Callable[..., list[Path]], dists: list[Path]
) -> None:
    (path,) = pep740_signer(dists[0])
    attestation = json.loads(path.read_text())
    assert load_attestation(dists[0]) == attestation
    attestation["verification_material"]["transparency_entries"][0]["kindVersion"] = {
        "kind": "hashedrekord",
        "version": "0.0.2",
    }
    path.write_text(json.dumps(attestation))
    with pytest.raises(ConfigError, match=r"not Rekor v1 dsse 0\.0\.1"):
        load_attestation(dists[0])
    path.unlink()
    with pytest.raises(ConfigError, match=r"publish\.attestation is missing"):
        load_attestation(dists[0])

    from sigstore.models import ClientTrustConfig

    config = pin_rekor_v1(ClientTrustConfig.production(offline=True))
    assert config.signing_config.get_tlogs()[0].__class__.__name__ == "RekorClient"


class _Redirector(BaseHTTPRequestHandler):
    target = ""
    seen: list[tuple[str, str]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _redirect(self) -> None:
        _Redirector.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(307)
        self.send_header("Location", f"{self.target}{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self._redirect()

    def do_POST(self) -> None:
        self._redirect()


@pytest.fixture
def redirector(pypi_standin: PyPIStandIn) -> Iterator[str]:
    _Redirector.target = pypi_standin.url
    _Redirector.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/legacy/"
    server.shutdown()
    server.server_close()


def test_secrets_never_follow_a_redirect_to_another_host(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    redirector: str,
    dists: list[Path],
) -> None:
    token = pypi_id_token()
    with IndexConnection(IndexURLs.from_upload_url(redirector)) as connection:
        from poetry_gitlab_release.pypi.trusted_publishing import exchange

        with pytest.raises(GitlabReleaseError) as caught:
            exchange(connection, token, project="hello-package")
        assert "the ID token was not sent there" in str(caught.value)
        api_token = pypi_standin.api_token("hello-package")
        with pytest.raises(ApiError, match="the token was not sent there"):
            upload_file(connection, dists[0], token=api_token, attestation=None)
    posts = [r for r in pypi_standin.requests if r[0] == "POST"]
    assert posts == []  # the stand-in (the other host) never saw the token nor the ID token
    assert token not in str(caught.value)
    assert isinstance(caught.value, AuthenticationError)


def test_an_expired_upload_token_says_how_long_it_lives(
    pypi_standin_factory: Callable[..., PyPIStandIn],
    pypi_id_token: Callable[..., str],
    dists: list[Path],
) -> None:
    from poetry_gitlab_release.pypi.trusted_publishing import exchange

    pypi = pypi_standin_factory(token_lifetime=0)
    with connect(pypi) as connection:
        credential = exchange(connection, pypi_id_token(), project="hello-package")
        assert credential.value not in repr(credential)
        with pytest.raises(AuthenticationError) as expired:
            upload_file(connection, dists[0], token=credential.value, attestation=None)
    text = str(expired.value)
    assert "Invalid API Token: token is expired" in text
    assert "lives 15 minutes" in text
    assert credential.value not in text
