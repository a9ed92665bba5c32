"""Property tests over what gitlab-verify reads from a registry: the simple index, file names,
signature material (bundles, PEP 740 attestations, .sig/.crt) and in-toto statements.

Whatever the input: a value, or one clear GitlabReleaseError; never an uncaught exception, never a
file name that could leave the download directory, never a verified file from tampered material.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import ApiError, GitlabReleaseError, VerificationError
from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
from poetry_gitlab_release.gitlab.connection import Connection
from poetry_gitlab_release.gitlab.downloads import download_file, fetch_small_file
from poetry_gitlab_release.gitlab.simple_index import (
    IndexFile,
    UnsafeFileNameError,
    check_file_name,
    fetch_project_page,
    parse_simple_page,
    select_release,
)
from poetry_gitlab_release.signing.check import verify_file
from poetry_gitlab_release.signing.identity import ExpectedIdentity
from poetry_gitlab_release.signing.material import (
    MaterialKind,
    SignatureMaterial,
    parse_material,
)
from poetry_gitlab_release.signing.results import Verdict
from poetry_gitlab_release.signing.statement import check_statement
from poetry_gitlab_release.verify.expected import parse_requirement
from tests.fixtures.figures import record

PAGE = "https://gitlab.example.com/api/v4/projects/7/packages/pypi/simple/hello/"
TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "sigstore"
GITLAB_REAL = TESTDATA / "gitlab-real"
REAL_FILE = "gitlab_oidc_project-0.0.3.tar.gz"
REAL_IDENTITY = "https://gitlab.com/facutuesca/gitlab-oidc-project//.gitlab-ci.yml@refs/heads/main"

# --- file names ------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../hello-1.0.tar.gz",
    "../../.bashrc.tar.gz",
    "/etc/hello-1.0.tar.gz",
    "C:hello-1.0.tar.gz",
    "C:\\dist\\hello-1.0.tar.gz",
    "..\\hello-1.0.tar.gz",
    "\\\\server\\share\\hello-1.0.tar.gz",
    "hello\x00-1.0.tar.gz",
    "hello-1.0.tar.gz\x00.txt",
    "hello-1.0.exe",
    "hello-1.0.tar.gz.sh",
    "hello-1.0.pth",
    ".hello-1.0.tar.gz",
    "..",
    "hello-1.0\n.tar.gz",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_names_from_the_index_are_refused(name: str) -> None:
    """As the link's last path segment (percent-encoded, as a registry would) or as its text."""
    digest = "#sha256=" + "0" * 64
    as_segment = f'<a href="../../files/{"0" * 64}/{quote(name, safe="")}{digest}"></a>'
    as_text = f'<a href="hello-1.0.tar.gz{digest}">{html.escape(name)}</a>'
    for page in (as_segment, as_text):
        with pytest.raises(VerificationError) as caught:
            parse_simple_page(page, PAGE)
        assert "\n" not in str(caught.value)


def test_a_benign_page_is_accepted() -> None:
    """The baseline for the test above: the same page with a proper name parses."""
    name = "hello-1.0.tar.gz"
    page = f'<a href="../../files/{"0" * 64}/{name}#sha256={"0" * 64}">{name}</a>'
    [item] = parse_simple_page(page, PAGE)
    assert item.name == name


_name_chars = st.sampled_from([*list("abc-_.0123/\\:%\x00\n ~"), "..", ".tar.gz", ".whl", ".zip"])
_names = st.lists(_name_chars, max_size=12).map("".join) | st.text(max_size=30)


@settings(max_examples=500, deadline=None)
@given(name=_names)
def test_check_file_name_accepts_only_bare_distribution_names(name: str) -> None:
    record("hypothesis.file_names")
    try:
        accepted = check_file_name(name)
    except UnsafeFileNameError as error:
        assert "\n" not in str(error)
        return
    assert accepted == name
    assert Path(name).name == name and not Path(name).is_absolute()
    assert not any(part in name for part in ("/", "\\", "\x00"))
    assert not name.startswith(".")
    assert name.endswith((".whl", ".tar.gz", ".zip"))


# --- the simple index ------------------------------------------------------------------------

_hrefs = st.one_of(
    _names,
    st.sampled_from(
        [
            "hello-1.0.tar.gz#sha256=" + "a" * 64,
            "hello-1.0-py3-none-any.whl#sha256=" + "B" * 64,
            "hello-1.0.tar.gz#sha256=xyz",
            "hello-1.0.tar.gz#md5=0",
            "https://evil.example.net/hello-1.0.tar.gz",
            "//evil.example.net/hello-1.0.tar.gz",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://[::1/x.tar.gz",
            "https://gitlab.example.com:abc/x.tar.gz",
            "../../files/abc/hello-1.0.tar.gz",
            "hello-1.0rc1.tar.gz",
            "hello-01.0.tar.gz",
            "Hello_World-2.0.zip",
            "hello-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
            "hello-not-a-version.tar.gz",
        ]
    ),
)


@st.composite
def _index_page(draw: st.DrawFn) -> str:
    anchors = []
    for _ in range(draw(st.integers(0, 6))):
        href = draw(_hrefs)
        attrs = f'href="{html.escape(href)}"'
        if draw(st.booleans()):
            attrs += f' data-requires-python="{html.escape(draw(st.text(max_size=10)))}"'
        if draw(st.booleans()):
            attrs += " data-yanked"
        text = draw(st.sampled_from(["", href.split("#")[0].rsplit("/", 1)[-1]]) | _names)
        anchors.append(f"<a {attrs}>{html.escape(text)}</a>")
    noise = draw(st.sampled_from(["", "<a>", "</a>", "<a href>", "<!--", "<![CDATA[", "&#0;"]))
    return "<html><body>" + noise + "<br/>".join(anchors) + draw(st.text(max_size=20))


@settings(max_examples=400, deadline=None)
@given(
    page=_index_page() | st.text(max_size=200), project=st.sampled_from(["hello", "Hello_World"])
)
def test_any_index_page_parses_or_gives_one_clear_error(page: str, project: str) -> None:
    record("hypothesis.simple_index")
    try:
        files = parse_simple_page(page, PAGE)
    except GitlabReleaseError as error:
        assert "\n" not in str(error)
        return
    for item in files:
        assert check_file_name(item.name) == item.name
        assert item.url.startswith("https://gitlab.example.com/")
        assert item.sha256 is None or len(item.sha256) == 64
    try:
        version, release = select_release(files, project, None)
    except GitlabReleaseError as error:
        assert "\n" not in str(error)
        return
    assert release and all(item.version_text == version for item in release)


def _is_safe(name: str) -> bool:
    try:
        check_file_name(name)
    except UnsafeFileNameError:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(_names, max_size=5),
    version=st.none() | st.sampled_from(["1.0", "2.0", "1.0rc1", "not a version", ""]),
)
def test_select_release_over_any_names(names: list[str], version: str | None) -> None:
    record("hypothesis.simple_index")
    files = [IndexFile(name, PAGE + name, None) for name in names if _is_safe(name)]
    try:
        select_release(files, "hello", version)
    except GitlabReleaseError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=40))
def test_any_requirement_text_parses_or_gives_a_usage_error(text: str) -> None:
    record("hypothesis.requirements")
    try:
        requirement = parse_requirement(text)
    except GitlabReleaseError as error:
        assert error.exit_code == 2
        return
    assert requirement.name


# --- signature material ----------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(list(MaterialKind)),
    content=st.binary(max_size=300)
    | st.sampled_from([b"{}", b"[]", b'{"version": 1}', b'{"mediaType": 1}', b"[" * 3000]),
    certificate=st.none() | st.binary(max_size=100),
)
def test_any_material_bytes_parse_or_give_one_clear_error(
    kind: MaterialKind, content: bytes, certificate: bytes | None
) -> None:
    record("hypothesis.material")
    material = SignatureMaterial(kind, content, "test", certificate)
    try:
        parse_material(material)
    except VerificationError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None)
@given(payload_type=st.sampled_from(["application/vnd.in-toto+json", "x"]), payload=st.binary())
def test_any_statement_is_checked_or_refused(payload_type: str, payload: bytes) -> None:
    record("hypothesis.material")
    try:
        check_statement(payload_type, payload, "f.tar.gz", "0" * 64, by_name=True)
    except VerificationError as error:
        assert "\n" not in str(error)


_real = pytest.mark.skipif(not GITLAB_REAL.is_dir(), reason=f"{GITLAB_REAL} is absent")


@pytest.fixture(scope="module")
def offline_verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from sigstore.models import ClientTrustConfig
    from sigstore.verify import Verifier

    with pytest.MonkeyPatch.context() as patch:
        # An old cached trusted_root.json would shadow the one embedded in sigstore-python.
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
        root = ClientTrustConfig.production(offline=True).trusted_root
        yield Verifier(trusted_root=root)


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _mutated(document: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    if not path:
        return replacement
    copied = copy.deepcopy(document)
    target = copied
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = replacement
    return copied


_replacement = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["AAAA", "", "-1", "9" * 30, "not base64!", "MA=="]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
_REAL_MATERIAL = {
    MaterialKind.BUNDLE: f"{REAL_FILE}.sigstore.json",
    MaterialKind.ATTESTATION: f"{REAL_FILE}.publish.attestation",
}


@_real
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), kind=st.sampled_from(list(_REAL_MATERIAL)))
def test_tampered_real_material_never_verifies_and_never_crashes(
    offline_verifier: Any, data: st.DataObject, kind: MaterialKind
) -> None:
    record("hypothesis.tampered_material")
    original = json.loads((GITLAB_REAL / _REAL_MATERIAL[kind]).read_bytes())
    path = data.draw(st.sampled_from(_paths(original)), label="path")
    replacement = data.draw(_replacement, label="replacement")
    tampered = _mutated(original, path, replacement)
    sha256 = hashlib.sha256((GITLAB_REAL / REAL_FILE).read_bytes()).hexdigest()
    expected = ExpectedIdentity(issuer="https://gitlab.com", identity=REAL_IDENTITY)
    result = verify_file(
        offline_verifier,
        name=REAL_FILE,
        sha256=sha256,
        size=None,
        path=None,
        material=SignatureMaterial(kind, json.dumps(tampered).encode(), "tampered"),
        expected=expected,
        online_log=False,
    )
    assert result.verdict in (Verdict.VERIFIED, Verdict.FAILED)
    assert result.reason is None or "\n" not in result.reason
    if result.verdict is Verdict.VERIFIED:
        # Only a change that leaves every signed or checked byte alone may still verify.
        assert _signed_parts(tampered, kind) == _signed_parts(original, kind), (path, replacement)


def _signed_parts(document: Any, kind: MaterialKind) -> Any:
    if kind is MaterialKind.ATTESTATION:
        return (document.get("envelope"), document["verification_material"].get("certificate"))
    material = document.get("verificationMaterial", {})
    return (
        document.get("dsseEnvelope") or document.get("messageSignature"),
        material.get("certificate") or material.get("x509CertificateChain"),
    )


@_real
def test_untampered_real_material_verifies(offline_verifier: Any) -> None:
    """The baseline for the test above: the property is not vacuous."""
    sha256 = hashlib.sha256((GITLAB_REAL / REAL_FILE).read_bytes()).hexdigest()
    expected = ExpectedIdentity(issuer="https://gitlab.com", identity=REAL_IDENTITY)
    for kind, file_name in _REAL_MATERIAL.items():
        content = (GITLAB_REAL / file_name).read_bytes()
        result = verify_file(
            offline_verifier,
            name=REAL_FILE,
            sha256=sha256,
            size=None,
            path=None,
            material=SignatureMaterial(kind, content, file_name),
            expected=expected,
            online_log=False,
        )
        assert result.verdict is Verdict.VERIFIED, result.reason


# --- bounded reads ---------------------------------------------------------------------------


def _client(handler: Any) -> GitLabClient:
    settings = resolve_settings(
        {}, {"GITLAB_HOST": "https://gitlab.example.com", "GITLAB_TOKEN": "glpat-x"}
    )
    return GitLabClient(
        Connection.from_settings(settings),
        transport=httpx.MockTransport(handler),
        sleep=lambda seconds: None,
        retry=RetryPolicy(attempts=2, base_delay=0.0),
    )


def _endless(request: httpx.Request) -> httpx.Response:
    def body() -> Iterator[bytes]:
        for _ in range(100_000):
            yield b"<a>" * 10_000

    return httpx.Response(200, content=body())


def test_index_page_size_is_bounded() -> None:
    with _client(_endless) as client, pytest.raises(ApiError, match="larger than 16 MiB"):
        fetch_project_page(client, "https://gitlab.example.com/api/v4/simple", "hello")


def test_signature_material_size_is_bounded() -> None:
    with _client(_endless) as client, pytest.raises(VerificationError, match="larger than"):
        fetch_small_file(client, "https://gitlab.example.com/api/v4/x.sigstore.json", "bundle")


def test_download_size_is_bounded_and_leaves_nothing(tmp_path: Path) -> None:
    with _client(_endless) as client, pytest.raises(VerificationError, match="larger than"):
        download_file(
            client,
            "https://gitlab.example.com/api/v4/files/hello-1.0.tar.gz",
            tmp_path,
            "hello-1.0.tar.gz",
            expected_sha256=None,
            max_bytes=1 << 20,
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("reader", ["index", "material", "download"])
def test_a_body_breaking_off_mid_stream_is_one_clear_error(reader: str, tmp_path: Path) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield b"<a href"
            raise httpx.ReadError("connection reset by peer")

        return httpx.Response(200, content=body())

    with _client(broken) as client, pytest.raises(GitlabReleaseError) as caught:
        if reader == "index":
            fetch_project_page(client, "https://gitlab.example.com/api/v4/simple", "hello")
        elif reader == "material":
            fetch_small_file(client, "https://gitlab.example.com/api/v4/x.sigstore.json", "b")
        else:
            download_file(
                client,
                "https://gitlab.example.com/api/v4/files/hello-1.0.tar.gz",
                tmp_path,
                "hello-1.0.tar.gz",
                expected_sha256=None,
            )
    assert "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []
