"""Unit tests of gitlab-verify's parts: index parser, downloads, material, policy, renderers."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import ConfigError, NotFoundError, UsageError, VerificationError
from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
from poetry_gitlab_release.gitlab.connection import Connection
from poetry_gitlab_release.gitlab.downloads import download_file, fetch_small_file
from poetry_gitlab_release.gitlab.simple_index import (
    UnsafeFileNameError,
    check_file_name,
    fetch_project_page,
    parse_simple_page,
    select_release,
)
from poetry_gitlab_release.signing.material import (
    MalformedMaterialError,
    MaterialKind,
    SignatureMaterial,
    attestation_to_bundle_json,
    parse_material,
)
from poetry_gitlab_release.signing.results import FileResult, Verdict
from poetry_gitlab_release.signing.statement import check_statement
from poetry_gitlab_release.verify.expected import (
    IdentityOptions,
    Requirement,
    parse_requirement,
    signer_from_options,
)
from poetry_gitlab_release.verify.local import local_material
from poetry_gitlab_release.verify.render import render_json, render_junit, render_table
from poetry_gitlab_release.verify.report import Report

API = "https://gitlab.example.com/api/v4"
PAGE = f"{API}/projects/1/packages/pypi/simple/my-pkg/"
SHA = "a" * 64
SHA2 = "b" * 64
GITLAB_REAL = (
    Path(__file__).resolve().parents[3] / "shared" / "testdata" / "sigstore" / "gitlab-real"
)


def anchor(name: str, sha: str = SHA, text: str | None = None, rp: str = "&gt;=3.9") -> str:
    url = f"{API}/projects/1/packages/pypi/files/{sha}/{name}#sha256={sha}"
    return f'<a href="{url}" data-requires-python="{rp}">{name if text is None else text}</a>'


def page(*anchors: str, br: bool = False) -> str:
    joiner = "<br>" if br else ""
    return (
        "<!DOCTYPE html><html><head><title>Links for my.pkg</title></head><body>"
        f"<h1>Links for my.pkg</h1>{joiner.join(anchors)}</body></html>"
    )


# --- simple index ------------------------------------------------------------------------


@pytest.mark.parametrize("br", [False, True])
def test_parses_gitlab_page(br: bool) -> None:
    html = page(anchor("my_pkg-1.0-py3-none-any.whl"), anchor("my.pkg-1.0.tar.gz", SHA2), br=br)
    files = parse_simple_page(html, PAGE)
    assert [f.name for f in files] == ["my_pkg-1.0-py3-none-any.whl", "my.pkg-1.0.tar.gz"]
    assert files[0].sha256 == SHA and files[1].sha256 == SHA2
    assert files[0].requires_python == ">=3.9"
    assert files[0].url.endswith("/my_pkg-1.0-py3-none-any.whl")
    assert "#" not in files[0].url


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../x-1.0.tar.gz", "path separator"),
        ("a\\x-1.0.tar.gz", "path separator"),
        ("/etc/x-1.0.tar.gz", "absolute path"),
        ("C:x-1.0.tar.gz", "absolute path"),
        ("x-1.0.tar.gz\x00.whl", "NUL"),
        ("x-1.0.exe", "unexpected extension"),
        ("x-1.0.tar.gz.sh", "unexpected extension"),
        (".x-1.0.tar.gz", "hidden"),
        ("..", "special"),
        ("", "empty"),
    ],
)
def test_check_file_name_rejects(name: str, reason: str) -> None:
    with pytest.raises(UnsafeFileNameError, match=reason):
        check_file_name(name)


def test_local_names_need_no_distribution_extension() -> None:
    assert check_file_name("a.txt", extensions=None) == "a.txt"


def test_encoded_separator_in_href_is_caught() -> None:
    html = f'<a href="{API}/projects/1/packages/pypi/files/{SHA}/..%2Fevil-1.0.tar.gz">x</a>'
    with pytest.raises(UnsafeFileNameError, match="path separator"):
        parse_simple_page(html, PAGE)


def test_link_text_must_match_the_file() -> None:
    html = page(anchor("my_pkg-1.0.tar.gz", text="/tmp/my_pkg-1.0.tar.gz"))
    with pytest.raises(UnsafeFileNameError, match="absolute path"):
        parse_simple_page(html, PAGE)
    html = page(anchor("my_pkg-1.0.tar.gz", text="other-1.0.tar.gz"))
    with pytest.raises(VerificationError, match="does not match"):
        parse_simple_page(html, PAGE)


def test_links_to_another_server_are_refused() -> None:
    html = (
        f'<a href="https://files.example.org/my_pkg-1.0.tar.gz#sha256={SHA}">my_pkg-1.0.tar.gz</a>'
    )
    with pytest.raises(VerificationError, match="another server"):
        parse_simple_page(html, PAGE)


def test_malformed_sha256_is_refused() -> None:
    with pytest.raises(VerificationError, match="malformed sha256"):
        parse_simple_page(page(anchor("my_pkg-1.0.tar.gz", sha="xyz")), PAGE)


def test_select_release_takes_every_file_of_the_version() -> None:
    files = parse_simple_page(
        page(
            anchor("my_pkg-1.0-py3-none-any.whl"),
            anchor("my_pkg-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
            anchor("my_pkg-1.0.tar.gz"),
            anchor("my_pkg-1.1.tar.gz"),
            anchor("my_pkg-2.0rc1.tar.gz"),
            anchor("other_pkg-9.0.tar.gz"),
        ),
        PAGE,
    )
    text, release = select_release(files, "My.Pkg", "1.0")
    assert text == "1.0"
    assert len(release) == 3
    text, release = select_release(files, "my-pkg", None)
    assert text == "1.1"  # the latest final release; 2.0rc1 is a pre-release
    with pytest.raises(NotFoundError, match=r"my-pkg 3\.0 is not in the index"):
        select_release(files, "my-pkg", "3.0")


def test_select_release_refuses_unparseable_names() -> None:
    files = parse_simple_page(page(anchor("my_pkg.tar.gz")), PAGE)
    with pytest.raises(VerificationError, match="not a wheel or sdist name"):
        select_release(files, "my-pkg", None)


# --- HTTP: index and downloads ---------------------------------------------------------------


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> GitLabClient:
    settings = resolve_settings({"host": "https://gitlab.example.com", "token": "glpat-secret"}, {})
    return GitLabClient(
        Connection.from_settings(settings),
        transport=httpx.MockTransport(handler),
        retry=RetryPolicy(attempts=1),
        sleep=lambda _: None,
    )


def test_index_forwarded_to_pypi_org_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "gitlab.example.com":
            return httpx.Response(302, headers={"Location": "https://pypi.org/simple/my-pkg/"})
        assert "authorization" not in request.headers
        return httpx.Response(200, text=page(anchor("my_pkg-1.0.tar.gz")))

    with (
        client_for(handler) as client,
        pytest.raises(VerificationError, match=r"redirected to pypi\.org"),
    ):
        fetch_project_page(client, f"{API}/projects/1/packages/pypi/simple", "my.pkg")


def test_index_uses_basic_auth_and_normalised_name() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=page(anchor("my_pkg-1.0.tar.gz")))

    with client_for(handler) as client:
        files = fetch_project_page(client, f"{API}/projects/1/packages/pypi/simple", "My_Pkg")
    assert files[0].name == "my_pkg-1.0.tar.gz"
    assert seen[0].url.path.endswith("/simple/my-pkg/")
    assert seen[0].headers["authorization"].startswith("Basic ")


def _streaming(total: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    block = b"x" * chunk
    sent = 0
    while sent < total:
        size = min(chunk, total - sent)
        sent += size
        yield block[:size]


def test_download_streams_and_checks_sha256(tmp_path: Path) -> None:
    total = 64 << 20
    expected = hashlib.sha256()
    for part in _streaming(total):
        expected.update(part)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_streaming(total))

    tracemalloc.start()
    try:
        with client_for(handler) as client:
            got = download_file(
                client,
                f"{API}/x",
                tmp_path,
                "my_pkg-1.0.tar.gz",
                expected_sha256=expected.hexdigest(),
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.size == total and got.sha256 == expected.hexdigest()
    assert peak < 16 << 20, f"peak {peak} bytes for a {total}-byte download"


def test_download_with_wrong_sha256_leaves_nothing(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"payload")

    with client_for(handler) as client, pytest.raises(VerificationError, match="the index says"):
        download_file(client, f"{API}/x", tmp_path, "my_pkg-1.0.tar.gz", expected_sha256=SHA)
    assert list(tmp_path.iterdir()) == []


def test_download_is_size_bounded(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=_streaming(5 << 20))

    with client_for(handler) as client, pytest.raises(VerificationError, match="larger than"):
        download_file(
            client,
            f"{API}/x",
            tmp_path,
            "my_pkg-1.0.tar.gz",
            expected_sha256=None,
            max_bytes=1 << 20,
        )
    assert list(tmp_path.iterdir()) == []


def test_download_refuses_unsafe_name(tmp_path: Path) -> None:
    with client_for(lambda r: httpx.Response(200)) as client, pytest.raises(UnsafeFileNameError):
        download_file(client, f"{API}/x", tmp_path, "../x-1.0.tar.gz", expected_sha256=None)


def test_small_file_missing_and_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("missing"):
            return httpx.Response(404, json={"message": "404 Package Not Found"})
        return httpx.Response(200, content=b"{" * 2048)

    with client_for(handler) as client:
        assert fetch_small_file(client, f"{API}/missing", "m") is None
        with pytest.raises(VerificationError, match="larger than"):
            fetch_small_file(client, f"{API}/big", "big", max_bytes=1024)


# --- material ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verif',
            "truncated JSON",
        ),
        (b"<html>", "invalid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.9+json"}', "malformed bundle"),
    ],
)
def test_malformed_bundles(content: bytes, reason: str) -> None:
    with pytest.raises(MalformedMaterialError, match=reason):
        parse_material(SignatureMaterial(MaterialKind.BUNDLE, content, "x.sigstore.json"))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"version": 2}, "version is 2"),
        ({"version": 1}, "verification_material or envelope missing"),
        (
            {"version": 1, "verification_material": {"certificate": "!!"}, "envelope": {}},
            "not base64",
        ),
    ],
)
def test_malformed_attestations(document: dict[str, object], reason: str) -> None:
    with pytest.raises(MalformedMaterialError, match=reason):
        attestation_to_bundle_json(document)


@pytest.mark.skipif(not GITLAB_REAL.is_dir(), reason="shared test data absent")
def test_attestation_conversion_matches_pypi_attestations() -> None:
    from pypi_attestations import Attestation
    from sigstore.models import Bundle

    raw = (GITLAB_REAL / "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation").read_text()
    theirs = Attestation.model_validate_json(raw).to_bundle()
    ours = Bundle.from_json(json.dumps(attestation_to_bundle_json(json.loads(raw))))
    theirs_document = json.loads(theirs.to_json())
    # pypi-attestations adds an empty timestamp list; the bundles are otherwise identical.
    assert theirs_document["verificationMaterial"].pop("timestampVerificationData") == {
        "rfc3161Timestamps": []
    }
    assert json.loads(ours.to_json()) == theirs_document


def statement(name: str, sha: str) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": name, "digest": {"sha256": sha}}],
        }
    ).encode()


def test_check_statement() -> None:
    kind = "application/vnd.in-toto+json"
    check_statement(kind, statement("f.tar.gz", SHA), "f.tar.gz", SHA, by_name=True)
    check_statement(kind, statement("other", SHA), "f.tar.gz", SHA, by_name=False)
    with pytest.raises(VerificationError, match="subject is 'other'"):
        check_statement(kind, statement("other", SHA), "f.tar.gz", SHA, by_name=True)
    with pytest.raises(VerificationError, match="another artifact"):
        check_statement(kind, statement("f.tar.gz", SHA2), "f.tar.gz", SHA, by_name=True)
    with pytest.raises(VerificationError, match="not in-toto"):
        check_statement("text/plain", statement("f.tar.gz", SHA), "f.tar.gz", SHA, by_name=True)


def test_local_material_search_order(tmp_path: Path) -> None:
    artifact = tmp_path / "f.whl"
    artifact.write_bytes(b"x")
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    assert local_material(artifact, bundle_dir=bundles, bundle=None) is None
    (tmp_path / "f.whl.sig").write_text("c2ln\n")
    (tmp_path / "f.whl.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    found = local_material(artifact, bundle_dir=bundles, bundle=None)
    assert found is not None and found.kind is MaterialKind.DETACHED
    (tmp_path / "f.whl.publish.attestation").write_text("{}")
    found = local_material(artifact, bundle_dir=bundles, bundle=None)
    assert found is not None and found.kind is MaterialKind.ATTESTATION
    (bundles / "f.whl.sigstore.json").write_text("{}")
    found = local_material(artifact, bundle_dir=bundles, bundle=None)
    assert found is not None and found.kind is MaterialKind.BUNDLE and "bundles" in found.source


# --- requirement and identity ------------------------------------------------------------


def test_parse_requirement() -> None:
    assert parse_requirement("hello-package==1.0.0") == Requirement("hello-package", "1.0.0")
    assert parse_requirement("hello.package") == Requirement("hello.package", None)
    for bad in ("hello>=1", "../x", "a b", "-x"):
        with pytest.raises(UsageError):
            parse_requirement(bad)


def test_default_identity() -> None:
    expected = signer_from_options(
        IdentityOptions(), server_url="https://gitlab.com", project_path="grp/proj", version="1.2.3"
    )
    assert expected.identity == "https://gitlab.com/grp/proj//.gitlab-ci.yml@refs/tags/v1.2.3"
    assert expected.issuer == "https://gitlab.com"
    assert expected.repository_uri == "https://gitlab.com/grp/proj"
    assert expected.ref == "refs/tags/v1.2.3"


def test_identity_overrides() -> None:
    options = IdentityOptions(
        ref="1.2.3", ci_config="ci/release.yml", issuer="https://issuer.example"
    )
    expected = signer_from_options(
        options, server_url="https://gitlab.example:8443", project_path="g/p", version="9"
    )
    assert expected.identity == "https://gitlab.example:8443/g/p//ci/release.yml@refs/tags/1.2.3"
    assert expected.issuer == "https://issuer.example"
    regex = signer_from_options(
        IdentityOptions(ref_regex=r"refs/tags/v1\..*"),
        server_url="https://gitlab.com",
        project_path="g/p",
        version="1.0",
    )
    assert regex.identity_pattern is not None and regex.ref_pattern == r"refs/tags/v1\..*"
    exact = signer_from_options(
        IdentityOptions(identity="https://x//y@z", issuer="https://i"),
        server_url="https://gitlab.com",
        project_path=None,
        version=None,
    )
    assert exact.identity == "https://x//y@z" and exact.repository_uri is None
    with pytest.raises(ConfigError, match="project path is unknown"):
        signer_from_options(
            IdentityOptions(), server_url="https://gitlab.com", project_path=None, version="1"
        )
    with pytest.raises(ConfigError, match="which ref"):
        signer_from_options(
            IdentityOptions(), server_url="https://gitlab.com", project_path="g/p", version=None
        )


# --- renderers -------------------------------------------------------------------------------


def sample_report() -> Report:
    return Report(
        subject="my-pkg==1.0",
        expected="https://gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1.0 (issuer https://gitlab.com)",
        source=f"{API}/projects/1/packages/pypi/simple/my-pkg/",
        results=(
            FileResult(
                "my_pkg-1.0.tar.gz",
                Verdict.VERIFIED,
                sha256=SHA,
                identity="https://gitlab.com/g/p//.gitlab-ci.yml@refs/tags/v1.0",
                ref="refs/tags/v1.0",
                commit="c" * 40,
                job_url="https://gitlab.com/g/p/-/jobs/7",
                log_index=42,
            ),
            FileResult("my_pkg-1.0-py3-none-any.whl", Verdict.UNSIGNED, reason="no bundle <&>"),
        ),
    )


def test_table_json_and_junit() -> None:
    report = sample_report()
    table = render_table(report, style=False)
    assert table[0].split() == [
        "file",
        "sha256",
        "signer",
        "identity",
        "ref",
        "commit",
        "job",
        "log",
        "index",
        "verdict",
    ]
    assert "42" in table[2] and table[2].endswith("verified")
    assert table[3].endswith("unsigned")
    document = json.loads(render_json(report))
    assert document["ok"] is False
    assert document["counts"] == {"verified": 1, "failed": 0, "unsigned": 1}
    assert document["files"][0]["log_index"] == 42
    root = ET.fromstring(render_junit(report))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = suite.findall("testcase")
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("type") == "unsigned"
    assert failure.get("message") == "no bundle <&>"


def test_empty_report_is_not_ok() -> None:
    assert not Report(subject="x", expected="y", source="z").ok


def test_help_documents_options_identity_and_exit_codes() -> None:
    from poetry_gitlab_release.verify.command import VerifyCommand

    command = VerifyCommand()
    for option in command.options:
        assert option.description, option.name
    text = command.help
    assert "https://HOST/PROJECT_PATH//.gitlab-ci.yml@refs/tags/vVERSION" in text
    assert "Exit codes" in text and "--gitlab-project" in text and "--project/-P" in text


def test_group_without_the_group_packages_api_falls_back_to_its_projects() -> None:
    """Older GitLab has no `GET /groups/:id/packages`: each project of the group is asked."""
    from poetry_gitlab_release.verify.expected import Requirement
    from poetry_gitlab_release.verify.registry import owning_project

    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        path = request.url.path
        if path.endswith("/groups/acme/packages"):
            return httpx.Response(404, json={"message": "404 Not Found"})
        if path.endswith("/groups/acme/projects"):
            assert request.url.params["include_subgroups"] == "true"
            return httpx.Response(
                200,
                json=[
                    {"id": 1, "path_with_namespace": "acme/a"},
                    {"id": 2, "path_with_namespace": "acme/b"},
                ],
            )
        if path.endswith("/projects/2/packages"):
            return httpx.Response(200, json=[{"name": "Hello_Package", "version": "1.0.0"}])
        return httpx.Response(200, json=[])

    owner = owning_project(client_for(handler), "acme", Requirement("hello-package", "1.0.0"))
    assert owner == ("2", "acme/b")
    assert asked[0].endswith("/groups/acme/packages")


def test_one_version_under_two_spellings_is_refused_unless_one_is_asked_for() -> None:
    from poetry_gitlab_release.gitlab.simple_index import IndexFile, select_release

    files = [
        IndexFile("HELLO-01.0.tar.gz", "https://x/a", "a" * 64, None, False),
        IndexFile("hello-1.0.tar.gz", "https://x/b", "b" * 64, None, False),
    ]
    with pytest.raises(VerificationError, match=r"several spellings \(01\.0, 1\.0\)"):
        select_release(files, "hello", None)
    version, release = select_release(files, "hello", "1.0")
    assert version == "1.0" and [item.name for item in release] == ["hello-1.0.tar.gz"]
