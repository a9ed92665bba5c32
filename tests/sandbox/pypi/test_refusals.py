"""The stand-in refuses what pypi.org refuses, with warehouse's codes and texts."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.pypi import PyPIStandIn, TrustedPublisher
from sandbox.sigstore import SigstoreStandIn
from tests.sandbox.gitlab.dists import make_sdist, make_wheel


def mint(pypi: PyPIStandIn, token: str) -> httpx.Response:
    return httpx.post(f"{pypi.url}/_/oidc/mint-token", json={"token": token})


def errors(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["message"] == "Token request failed"
    return [(e["code"], e["description"]) for e in body["errors"]]


def upload(
    pypi: PyPIStandIn,
    path: Path,
    token: str | None,
    *,
    attestations: list[Path] | None = None,
    version: str = "0.1.0",
    accept: str = "text/html",
) -> httpx.Response:
    data: dict[str, Any] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": "hello-package",
        "version": version,
        "filetype": "bdist_wheel" if path.name.endswith(".whl") else "sdist",
        "pyversion": "py3" if path.name.endswith(".whl") else "source",
    }
    if attestations is not None:
        data["attestations"] = json.dumps([json.loads(a.read_text()) for a in attestations])
    auth = ("__token__", token) if token is not None else None
    return httpx.post(
        pypi.upload_url,
        data=data,
        files={"content": (path.name, path.read_bytes(), "application/octet-stream")},
        auth=auth,
        headers={"Accept": accept},
        timeout=30,
    )


def test_audience_and_a_good_exchange(
    pypi_standin: PyPIStandIn, pypi_id_token: Callable[..., str]
) -> None:
    assert httpx.get(f"{pypi_standin.url}/_/oidc/audience").json() == {"audience": "pypi"}
    answer = mint(pypi_standin, pypi_id_token()).json()
    assert answer["success"] is True
    assert answer["token"].startswith("pypi-")
    assert 890 <= answer["expires"] - pypi_standin.oidc.tokens[answer["token"]].not_before <= 900


@pytest.mark.parametrize(
    ("claims", "code", "text"),
    [
        ({"audience": "sigstore"}, "invalid-token", "malformed or invalid token"),
        ({"audience": ["pypi", "other"]}, "invalid-token", "malformed or invalid token"),
        ({"lifetime": -120}, "invalid-token", "malformed or invalid token"),
        ({"iss": "https://gitlab.example.com"}, "invalid-payload", "unknown trusted publishing"),
        (
            {"project_path": "demo-group/other", "sub": "project_path:demo-group/other:x"},
            "invalid-publisher",
            (
                "valid token, but no corresponding publisher (Publisher with matching claims was "
                "not found)"
            ),
        ),
        (
            {"ci_config_path": "ci/release.yml"},
            "invalid-publisher",
            "Publisher with matching claims was not found",
        ),
        ({"ref_path": None}, "invalid-publisher", "Missing claim 'ref_path'"),
        (
            {"sub": "project_path:someone/else:ref_type:tag:ref:v1"},
            "invalid-publisher",
            "Check failed for required claim 'sub'",
        ),
    ],
)
def test_mint_token_refusals(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    claims: dict[str, Any],
    code: str,
    text: str,
) -> None:
    ((got_code, description),) = errors(mint(pypi_standin, pypi_id_token(**claims)))
    assert (got_code, text in description) == (code, True), description


def test_each_id_token_is_exchanged_once_and_the_signature_is_checked(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    sigstore_standin_factory: Callable[..., SigstoreStandIn],
) -> None:
    token = pypi_id_token()
    assert mint(pypi_standin, token).status_code == 200
    assert errors(mint(pypi_standin, token)) == [
        ("invalid-reuse-token", "invalid token: already used")
    ]
    forger = sigstore_standin_factory(issuer="https://gitlab.com")  # same claims, other key
    forged = forger.mint_token(audience="pypi", ref="v0.1.0")
    assert errors(mint(pypi_standin, forged)) == [("invalid-token", "malformed or invalid token")]
    assert errors(httpx.post(f"{pypi_standin.url}/_/oidc/mint-token", content=b"{}"))[0][0] == (
        "invalid-payload"
    )
    assert errors(mint(pypi_standin, "not-a-jwt")) == [("invalid-payload", "malformed JWT")]


def test_environment_constrained_publisher(
    pypi_standin_factory: Callable[..., PyPIStandIn], pypi_id_token: Callable[..., str]
) -> None:
    publisher = TrustedPublisher("hello-package", "demo-group/hello-package", environment="pypi")
    pypi = pypi_standin_factory(publishers=(publisher,))
    assert mint(pypi, pypi_id_token(environment="pypi")).status_code == 200
    ((code, description),) = errors(mint(pypi, pypi_id_token(environment="staging")))
    assert code == "invalid-publisher"
    assert "Publisher with matching claims was not found" in description


def test_upload_refusals_carry_warehouse_texts_in_the_status_line(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    tmp_path: Path,
) -> None:
    wheel = make_wheel(tmp_path)
    token = mint(pypi_standin, pypi_id_token()).json()["token"]

    anonymous = upload(pypi_standin, wheel, None)
    assert anonymous.status_code == 403
    assert anonymous.reason_phrase.startswith("Invalid or non-existent authentication")

    foreign = pep740_signer(wheel, project_path="demo-group/other")
    refused = upload(pypi_standin, wheel, token, attestations=foreign, accept="application/json")
    assert refused.status_code == 400
    assert refused.reason_phrase.startswith(
        "Invalid attestations supplied during upload: Could not verify the uploaded artifact "
        "using the included attestation:"
    )
    assert refused.json()["code"].startswith("400 Invalid attestations supplied")
    assert pypi_standin.files("hello-package") == []  # nothing half-stored

    good = pep740_signer(wheel)
    assert upload(pypi_standin, wheel, token, attestations=good).status_code == 200
    assert upload(pypi_standin, wheel, token, attestations=good).status_code == 200  # no-op
    assert pypi_standin.uploads == 1

    other = tmp_path / "other"
    other.mkdir()
    changed = make_wheel(other, version="0.1.0")
    changed.write_bytes(changed.read_bytes() + b"\0")
    duplicate = upload(pypi_standin, changed, token)
    assert duplicate.status_code == 400
    assert duplicate.reason_phrase.startswith(f"File already exists ('{wheel.name}'")

    sdist = make_sdist(tmp_path)
    pypi_standin.age_release("hello-package", "0.1.0", days=15)
    late = upload(pypi_standin, sdist, token)
    assert late.status_code == 400
    assert late.reason_phrase == (
        "Uploading new files to releases older than 14 days is not allowed."
    )
    assert upload(pypi_standin, wheel, token).status_code == 200  # identical: still a no-op

    api_token = pypi_standin.api_token("hello-package")
    newer = make_wheel(other, version="0.2.0")
    no_tp = upload(
        pypi_standin, newer, api_token, attestations=pep740_signer(newer), version="0.2.0"
    )
    assert no_tp.reason_phrase.startswith(
        "Invalid attestations supplied during upload: Attestations are only supported when "
        "using Trusted Publishing"
    )


def test_expired_upload_token(
    pypi_standin_factory: Callable[..., PyPIStandIn],
    pypi_id_token: Callable[..., str],
    tmp_path: Path,
) -> None:
    pypi = pypi_standin_factory(token_lifetime=0)
    token = mint(pypi, pypi_id_token()).json()["token"]
    answer = upload(pypi, make_wheel(tmp_path), token)
    assert (answer.status_code, answer.reason_phrase) == (
        403,
        "Invalid API Token: token is expired",
    )


def test_simple_json_and_integrity_apis(
    pypi_standin: PyPIStandIn,
    pypi_id_token: Callable[..., str],
    pep740_signer: Callable[..., list[Path]],
    tmp_path: Path,
) -> None:
    wheel, sdist = make_wheel(tmp_path), make_sdist(tmp_path)
    token = mint(pypi_standin, pypi_id_token()).json()["token"]
    assert upload(pypi_standin, wheel, token, attestations=pep740_signer(wheel)).status_code == 200
    assert upload(pypi_standin, sdist, token).status_code == 200

    simple = httpx.get(
        f"{pypi_standin.simple_url}hello-package/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
    ).json()
    by_name = {f["filename"]: f for f in simple["files"]}
    assert by_name[wheel.name]["provenance"] == pypi_standin.provenance_url(
        "hello-package", "0.1.0", wheel.name
    )
    assert by_name[sdist.name]["provenance"] is None
    page = httpx.get(f"{pypi_standin.simple_url}hello-package/").text
    assert f'data-provenance="{by_name[wheel.name]["provenance"]}"' in page
    moved = httpx.get(f"{pypi_standin.simple_url}Hello_Package/")
    assert (moved.status_code, moved.headers["Location"]) == (301, "/simple/hello-package/")

    info = httpx.get(f"{pypi_standin.url}/pypi/hello-package/json").json()
    assert {f["filename"] for f in info["releases"]["0.1.0"]} == {wheel.name, sdist.name}
    assert info["info"]["version"] == "0.1.0"
    file_bytes = httpx.get(by_name[sdist.name]["url"]).content
    assert file_bytes == sdist.read_bytes()

    none = httpx.get(pypi_standin.provenance_url("hello-package", "0.1.0", sdist.name))
    assert (none.status_code, none.json()) == (
        404,
        {"message": f"No provenance available for {sdist.name}"},
    )
    refused = httpx.get(by_name[wheel.name]["provenance"], headers={"Accept": "text/html"})
    assert refused.status_code == 406
    provenance = httpx.get(by_name[wheel.name]["provenance"]).json()
    (bundle,) = provenance["attestation_bundles"]
    assert bundle["publisher"] == {
        "kind": "GitLab",
        "repository": "demo-group/hello-package",
        "workflow_filepath": ".gitlab-ci.yml",
        "environment": None,
    }
