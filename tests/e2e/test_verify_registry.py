"""`poetry gitlab-verify` as a consumer, through the real `poetry` executable, against the
GitLab and Sigstore stand-ins. Releases are signed with the real sigstore-python client against
the Sigstore stand-in and published with plain httpx where `gitlab-release` publishes them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import venv
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.gitlab import GitLabStandIn
from sandbox.sigstore import SigstoreStandIn
from tests.e2e.verify_support import (
    NAME,
    PROJECT_PATH,
    VERSION,
    SignedRelease,
    make_sdist,
    make_wheel,
    publish,
    put_generic,
    sign_release,
)
from tests.fixtures.poetry import POETRY, PoetryCli

pytestmark = pytest.mark.e2e

VerifyRun = Callable[..., subprocess.CompletedProcess[str]]

WHEEL = f"hello_package-{VERSION}-py3-none-any.whl"
SDIST = f"hello_package-{VERSION}.tar.gz"


@pytest.fixture(scope="module")
def gitlab() -> Iterator[GitLabStandIn]:
    with GitLabStandIn() as standin:
        yield standin


@pytest.fixture(scope="module")
def sigstore(
    gitlab: GitLabStandIn, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SigstoreStandIn]:
    with SigstoreStandIn(
        issuer=gitlab.url, state_dir=tmp_path_factory.mktemp("sigstore")
    ) as standin:
        yield standin


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    directory = tmp_path_factory.mktemp("dist")
    return [make_wheel(directory), make_sdist(directory)]


@pytest.fixture(scope="module")
def signed(sigstore: SigstoreStandIn, gitlab: GitLabStandIn, dists: list[Path]) -> SignedRelease:
    return sign_release(sigstore, gitlab, dists, attestations=True)


@pytest.fixture
def registry(gitlab: GitLabStandIn) -> GitLabStandIn:
    gitlab.clear_packages()
    gitlab.reset_log()
    return gitlab


@pytest.fixture
def verify(
    module_poetry_cli: PoetryCli, gitlab: GitLabStandIn, sigstore: SigstoreStandIn, tmp_path: Path
) -> VerifyRun:
    def run(
        *args: str, token: str | None = None, trust: bool = True
    ) -> subprocess.CompletedProcess[str]:
        base = ["gitlab-verify", "--host", gitlab.url, "--token", token or gitlab.tokens.read_api]
        if trust:
            base += ["--trust-config", str(sigstore.trust_config_path)]
        if not any(a in args for a in ("--gitlab-project", "--group")):
            base += ["--gitlab-project", PROJECT_PATH]
        result = module_poetry_cli.run(*base, *args, cwd=tmp_path, timeout=120)
        for secret in (gitlab.tokens.read_api, gitlab.tokens.personal, token or ""):
            if secret:
                assert secret not in result.stdout + result.stderr
        return result

    return run


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    document: dict[str, object] = json.loads(result.stdout)
    return document


def _files(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    files = _json(result)["files"]
    assert isinstance(files, list)
    return {str(f["file"]): f for f in files}


def _verify_with_environment(
    cli: PoetryCli, sigstore: SigstoreStandIn, cwd: Path, **environment: str
) -> subprocess.CompletedProcess[str]:
    """`gitlab-verify NAME==VERSION` configured by the environment alone (CI or GITLAB_*)."""
    return cli.run(
        "gitlab-verify",
        f"{NAME}=={VERSION}",
        "--trust-config",
        str(sigstore.trust_config_path),
        cwd=cwd,
        env=environment,
    )


# --- what works ------------------------------------------------------------------------------


def test_verifies_every_file_of_a_release(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun, tmp_path: Path
) -> None:
    publish(registry, signed)
    junit = tmp_path / "verify.xml"
    dest = tmp_path / "dest"
    result = verify(f"{NAME}=={VERSION}", "--dest", str(dest), "--junit", str(junit))
    assert result.returncode == 0, result.stderr
    for name in (WHEEL, SDIST):
        assert name in result.stdout
        assert (dest / name).is_file()
    identity = f"https://{registry.url.split('://')[1]}/{PROJECT_PATH}//.gitlab-ci.yml@refs/tags/v{VERSION}"
    assert identity in result.stdout
    assert "2 of 2 file(s) verified" in result.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "0"


def test_json_report_and_latest_version(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed)
    result = verify(NAME, "--format", "json")
    assert result.returncode == 0, result.stderr
    document = _json(result)
    assert document["subject"] == f"{NAME}=={VERSION}"
    files = _files(result)
    assert set(files) == {WHEEL, SDIST}
    wheel = files[WHEEL]
    assert wheel["verdict"] == "verified"
    assert wheel["ref"] == f"refs/tags/v{VERSION}"
    assert wheel["material"] == "sigstore bundle"
    assert isinstance(wheel["log_index"], int)
    assert str(wheel["job_url"]).startswith(f"{registry.url}/{PROJECT_PATH}/-/jobs/")
    assert wheel["sha256"] == hashlib.sha256((signed.files[0]).read_bytes()).hexdigest()


def test_pep740_attestation_when_no_bundle(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed, bundles=False, attestations=True)
    result = verify(f"{NAME}=={VERSION}", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert {f["material"] for f in _files(result).values()} == {"PEP 740 attestation"}


def test_detached_sig_and_crt_need_the_online_log(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed, bundles=False, detached=True)
    online = verify(f"{NAME}=={VERSION}", "--format", "json")
    assert online.returncode == 0, online.stderr
    assert {f["material"] for f in _files(online).values()} == {"detached .sig/.crt"}
    offline = verify(f"{NAME}=={VERSION}", "--offline")
    assert offline.returncode == 1
    assert f"{WHEEL}: unsigned:" in offline.stderr


def test_group_index_finds_the_publishing_project(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed)
    registry.reset_log()
    result = verify(f"{NAME}=={VERSION}", "--group", "demo-group", token=registry.tokens.personal)
    assert result.returncode == 0, result.stderr
    assert "/groups/demo-group/-/packages/pypi/simple/hello-package/" in result.stdout
    # One group-level Packages API call finds the publishing project, no per-project crawl.
    paths = [entry.path for entry in registry.request_log]
    assert "/api/v4/groups/demo-group/packages" in paths
    assert not any(path.endswith("/projects") for path in paths)


def test_job_token_and_object_storage_redirect_carry_no_credential(
    make_gitlab_standin: Callable[..., GitLabStandIn],
    sigstore_standin_factory: Callable[..., SigstoreStandIn],
    dists: list[Path],
    module_poetry_cli: PoetryCli,
    tmp_path: Path,
) -> None:
    gitlab = make_gitlab_standin(object_storage=True)
    sigstore = sigstore_standin_factory(issuer=gitlab.url)
    publish(gitlab, sign_release(sigstore, gitlab, dists))
    project_id = gitlab.project_id(PROJECT_PATH)
    result = _verify_with_environment(
        module_poetry_cli,
        sigstore,
        tmp_path,
        CI_SERVER_URL=gitlab.url,
        CI_PROJECT_ID=str(project_id),
        CI_PROJECT_PATH=PROJECT_PATH,
        CI_JOB_TOKEN=gitlab.job_token(project_id),
    )
    assert result.returncode == 0, result.stderr
    downloads = [r for r in gitlab.object_storage_log if r.method == "GET"]
    assert downloads, "the files should have been served from object storage"
    assert all(not r.credential_headers for r in downloads)


def test_install_puts_exactly_the_verified_files_into_the_environment(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun, tmp_path: Path
) -> None:
    publish(registry, signed)
    target = tmp_path / "target-env"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(target)
    python = target / "bin" / "python"
    result = verify(f"{NAME}=={VERSION}", "--install", "--python", str(python))
    assert result.returncode == 0, result.stderr
    assert "installed hello-package==0.1.0" in result.stderr
    shown = subprocess.run(
        [str(python), "-c", "import hello_package, sys; sys.stdout.write(hello_package.VERSION)"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout == VERSION, shown.stderr


def test_install_refused_when_a_file_fails(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun, tmp_path: Path
) -> None:
    publish(registry, signed, skip_signatures_for=(SDIST,))
    target = tmp_path / "target-env"
    venv.EnvBuilder(with_pip=False, system_site_packages=True).create(target)
    result = verify(f"{NAME}=={VERSION}", "--install", "--python", str(target / "bin" / "python"))
    assert result.returncode == 1
    assert "installed" not in result.stderr
    assert not list((target / "lib").glob("*/site-packages/hello_package"))


# --- the reject list -------------------------------------------------------------------------


def _replace_file(
    gitlab: GitLabStandIn,
    file_name: str,
    *,
    content: bytes | None = None,
    new_name: str | None = None,
    keep_sha256: bool = False,
) -> None:
    """Swap a stored PyPI file (the registry is the attacker here)."""
    state = gitlab.app.state
    for package in state.packages.values():
        for index, record in enumerate(package.files):
            if record.file_name != file_name:
                continue
            data = record.content if content is None else content
            sha256 = record.sha256 if keep_sha256 else hashlib.sha256(data).hexdigest()
            package.files[index] = dataclasses.replace(
                record, content=data, sha256=sha256, file_name=new_name or record.file_name
            )
            return
    raise AssertionError(f"{file_name} is not stored")


def _rejects(result: subprocess.CompletedProcess[str], file_name: str, reason: str) -> None:
    assert result.returncode == 1, result.stderr
    # One line per failure, starting with the file's name, carrying the reason.
    # (a per-file verdict, or "Error: " when the index itself is refused)
    lines = [
        line
        for line in result.stderr.splitlines()
        if line.removeprefix("Error: ").startswith(file_name + ": ")
    ]
    assert any(reason in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr


def test_rejects_tampered_artifact(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun, tmp_path: Path
) -> None:
    publish(registry, signed)
    _replace_file(registry, WHEEL, content=signed.files[0].read_bytes() + b"tampered")
    dest = tmp_path / "dest"
    result = verify(f"{NAME}=={VERSION}", "--dest", str(dest))
    _rejects(result, WHEEL, "the signature does not match this file's content")
    assert not (dest / WHEEL).exists(), "a file that failed must not stay in --dest"


def test_rejects_bundle_of_another_file(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed, skip_signatures_for=(WHEEL,))
    put_generic(
        registry,
        registry.project_id(PROJECT_PATH),
        NAME,
        VERSION,
        f"{WHEEL}.sigstore.json",
        signed.bundles[SDIST].encode(),
    )
    _rejects(
        verify(f"{NAME}=={VERSION}"), WHEEL, "the signature does not match this file's content"
    )


@pytest.mark.parametrize(
    ("signer", "reason"),
    [
        ({"project_path": "demo-group/web-app"}, "source repository is"),
        ({"ref": "v9.9.9"}, "ref is refs/tags/v9.9.9, expected refs/tags/v0.1.0"),
        ({"ref": "main", "ref_type": "branch"}, "ref is refs/heads/main"),
        ({"ci_config_path": "ci/release.yml"}, "//ci/release.yml@"),
    ],
    ids=["wrong-project", "wrong-ref", "branch-not-tag", "wrong-ci-config"],
)
def test_rejects_wrong_signer(
    registry: GitLabStandIn,
    sigstore: SigstoreStandIn,
    dists: list[Path],
    verify: VerifyRun,
    signer: dict[str, Any],
    reason: str,
) -> None:
    publish(registry, sign_release(sigstore, registry, dists, **signer))
    result = verify(f"{NAME}=={VERSION}")
    _rejects(result, WHEEL, "signer does not match")
    _rejects(result, SDIST, reason)


def test_rejects_wrong_issuer(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed)
    result = verify(f"{NAME}=={VERSION}", "--issuer", "https://gitlab.example.com")
    _rejects(result, WHEEL, f"issuer is {registry.url}, expected https://gitlab.example.com")


def test_rejects_certificate_from_untrusted_ca(
    registry: GitLabStandIn,
    sigstore_standin_factory: Callable[..., SigstoreStandIn],
    dists: list[Path],
    verify: VerifyRun,
) -> None:
    other = sigstore_standin_factory(issuer=registry.url)  # same issuer, its own CA and log
    publish(registry, sign_release(other, registry, dists))
    _rejects(verify(f"{NAME}=={VERSION}"), WHEEL, "certificate not issued by a trusted CA")


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda text: text[: len(text) // 2], "malformed bundle: truncated JSON"),
        (
            lambda text: '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
            "malformed bundle",
        ),
        (lambda text: "not json at all", "malformed bundle: invalid JSON"),
    ],
    ids=["truncated", "malformed-shape", "not-json"],
)
def test_rejects_malformed_or_truncated_bundle(
    registry: GitLabStandIn,
    signed: SignedRelease,
    verify: VerifyRun,
    mangle: Callable[[str], str],
    reason: str,
) -> None:
    publish(registry, signed, skip_signatures_for=(WHEEL,))
    put_generic(
        registry,
        registry.project_id(PROJECT_PATH),
        NAME,
        VERSION,
        f"{WHEEL}.sigstore.json",
        mangle(signed.bundles[WHEEL]).encode(),
    )
    _rejects(verify(f"{NAME}=={VERSION}"), WHEEL, reason)


def test_rejects_missing_bundle(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed, skip_signatures_for=(SDIST,))
    result = verify(f"{NAME}=={VERSION}", "--format", "json")
    _rejects(result, SDIST, "unsigned: no hello_package-0.1.0.tar.gz.sigstore.json")
    files = _files(result)
    assert files[WHEEL]["verdict"] == "verified"
    assert files[SDIST]["verdict"] == "unsigned"


def test_rejects_index_sha256_that_does_not_match_the_download(
    registry: GitLabStandIn, signed: SignedRelease, verify: VerifyRun
) -> None:
    publish(registry, signed)
    _replace_file(registry, SDIST, content=b"swapped after upload", keep_sha256=True)
    _rejects(verify(f"{NAME}=={VERSION}"), SDIST, "sha256 of the download is")


@pytest.mark.parametrize(
    ("bad_name", "reason"),
    [
        ("../hello_package-0.1.0.tar.gz", "contains a path separator"),
        ("/tmp/hello_package-0.1.0.tar.gz", "is an absolute path"),
        ("hello_package-0.1.0.exe", "unexpected extension"),
    ],
    ids=["path-separator", "absolute-path", "unexpected-extension"],
)
def test_rejects_unsafe_file_names_from_the_index(
    registry: GitLabStandIn,
    signed: SignedRelease,
    verify: VerifyRun,
    tmp_path: Path,
    bad_name: str,
    reason: str,
) -> None:
    publish(registry, signed)
    _replace_file(registry, SDIST, new_name=bad_name)
    result = verify(f"{NAME}=={VERSION}", "--dest", str(tmp_path / "dest"))
    _rejects(result, repr(bad_name), reason)
    assert not (tmp_path / "hello_package-0.1.0.tar.gz").exists()
    assert not Path("/tmp/hello_package-0.1.0.tar.gz").exists() or "absolute" not in reason


# --- a large file: constant memory ----------------------------------------------------------


@pytest.mark.slow
def test_300_mb_file_verifies_in_bounded_memory(
    registry: GitLabStandIn, sigstore: SigstoreStandIn, module_poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    from sigstore.hashes import Hashed
    from sigstore.models import ClientTrustConfig
    from sigstore.oidc import IdentityToken
    from sigstore.sign import SigningContext
    from sigstore_models.common.v1 import HashAlgorithm

    size = 300 * 1024 * 1024
    content = b"\0" * size
    name = "hello_package-0.3.0-py3-none-any.whl"
    project_id = registry.project_id(PROJECT_PATH)
    registry.app.state.add_pypi_file(
        project_id, NAME, "0.3.0", name, content, requires_python="", metadata={}
    )
    token = sigstore.mint_token(
        project_path=PROJECT_PATH,
        project_id=project_id,
        namespace_id=registry.scenario.projects[project_id].namespace_id,
        ref="v0.3.0",
        server_url=registry.url,
    )
    context = SigningContext.from_trust_config(
        ClientTrustConfig.from_json(sigstore.trust_config_json())
    )
    with context.signer(IdentityToken(token)) as signer:
        bundle = signer.sign_artifact(
            Hashed(digest=hashlib.sha256(content).digest(), algorithm=HashAlgorithm.SHA2_256)
        )
    del content
    put_generic(
        registry, project_id, NAME, "0.3.0", f"{name}.sigstore.json", bundle.to_json().encode()
    )
    measure = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            measure,
            str(POETRY),
            "--no-interaction",
            "gitlab-verify",
            f"{NAME}==0.3.0",
            "--host",
            registry.url,
            "--token",
            registry.tokens.read_api,
            "--gitlab-project",
            PROJECT_PATH,
            "--trust-config",
            str(sigstore.trust_config_path),
            "--dest",
            str(tmp_path / "dest"),
        ],
        env=module_poetry_cli.environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    max_rss_kib, returncode = (int(v) for v in result.stdout.split()[-2:])
    assert returncode == 0, result.stderr
    assert (tmp_path / "dest" / name).stat().st_size == size
    print(f"peak RSS of poetry gitlab-verify on a 300 MB file: {max_rss_kib / 1024:.0f} MiB")
    assert max_rss_kib < 200 * 1024, f"peak RSS {max_rss_kib / 1024:.0f} MiB"


def test_an_interrupted_run_leaves_no_downloaded_file_behind(
    registry: GitLabStandIn, signed: SignedRelease, sigstore: SigstoreStandIn, tmp_path: Path
) -> None:
    """The generic registry fails for good after the first download: the error propagates and
    the files already downloaded into --dest are removed, none of them having been verified
    as part of a whole release."""
    from poetry_gitlab_release.config.settings import resolve_settings
    from poetry_gitlab_release.errors import OperationalError
    from poetry_gitlab_release.gitlab.client import GitLabClient, RetryPolicy
    from poetry_gitlab_release.signing.trust import make_verifier
    from poetry_gitlab_release.verify.expected import IdentityOptions, Requirement
    from poetry_gitlab_release.verify.flow import verify_registry
    from sandbox.gitlab import FaultPlan

    publish(registry, signed)
    registry.set_faults(FaultPlan(rate=1.0, kinds=("503",), path_contains="/packages/generic/"))
    settings = resolve_settings(
        {"host": registry.url, "token": registry.tokens.read_api, "project": PROJECT_PATH}, {}
    )
    dest = tmp_path / "dest"
    try:
        with pytest.raises(OperationalError):
            verify_registry(
                settings,
                Requirement(NAME, VERSION),
                dest=dest,
                identity_options=IdentityOptions(),
                make_verifier=lambda: make_verifier(sigstore.trust_config_path, None, False),
                online_log=True,
                client_factory=lambda c: GitLabClient(c, retry=RetryPolicy(attempts=1)),
            )
    finally:
        registry.set_faults(None)
    assert any(
        entry.path.endswith(".whl") or ".tar.gz" in entry.path for entry in registry.request_log
    )
    assert list(dest.iterdir()) == []


def test_group_from_the_environment_selects_the_group_index(
    registry: GitLabStandIn,
    signed: SignedRelease,
    sigstore: SigstoreStandIn,
    module_poetry_cli: PoetryCli,
    tmp_path: Path,
) -> None:
    """GITLAB_RELEASE_GROUP is the `group` setting (docs/reference/configuration.md), as
    --group is: both select the group-level index."""
    publish(registry, signed)
    result = _verify_with_environment(
        module_poetry_cli,
        sigstore,
        tmp_path,
        GITLAB_HOST=registry.url,
        GITLAB_TOKEN=registry.tokens.personal,
        GITLAB_RELEASE_GROUP="demo-group",
    )
    assert result.returncode == 0, result.stderr
    assert "/groups/demo-group/-/packages/pypi/simple/hello-package/" in result.stdout
