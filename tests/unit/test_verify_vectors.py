"""Real-world vectors: sigstore-conformance bundle-verify cases and a real GitLab-signed
attestation, through `gitlab-verify`'s local-file mode (the command itself, in process).

The vectors are read from ../shared/testdata/sigstore (Apache-2.0, never copied into the
repository); the tests skip when that directory is absent. Verification is offline: the
production trusted root embedded in sigstore-python, or the case's own trusted_root.json.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cleo.testers.command_tester import CommandTester

from poetry_gitlab_release.verify.command import VerifyCommand

TESTDATA = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "sigstore"
CONFORMANCE = TESTDATA / "conformance-bundle-verify"
GITLAB_REAL = TESTDATA / "gitlab-real"

DEFAULT_IDENTITY = (
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/"
    ".github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main"
)
DEFAULT_ISSUER = "https://token.actions.githubusercontent.com"

# Valid cases sigstore-python 4.5.1 rejects (sigstore.md section 9.1). The managed-key cases
# verify with a bare public key; gitlab-verify verifies certificate identities only.
DEVIATIONS = {
    "intoto-with-custom-trust-root": "intoto log entries are unsupported by sigstore-python",
    "trust-root-tsa-validity-end-inclusive": "sigstore-python treats the TSA end as exclusive",
    "managed-key-happy-path": "public-key bundles: gitlab-verify checks certificate identities",
    "managed-key-and-trusted-root": "public-key bundles: gitlab-verify checks certificate identities",
}

# Cases whose trusted root itself is invalid: rejected as a configuration error (exit 2).
BAD_TRUST_ROOT = {"trust-root-tlog-missing-validity-start_fail"}

pytestmark = pytest.mark.skipif(not TESTDATA.is_dir(), reason=f"{TESTDATA} is absent")


@pytest.fixture(autouse=True)
def _isolated_sigstore_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An old cached trusted_root.json would shadow the one embedded in sigstore-python.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in (
        "CI_JOB_TOKEN",
        "CI_PROJECT_ID",
        "CI_PROJECT_PATH",
        "CI_SERVER_URL",
        "GITLAB_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def run_verify(*args: str) -> tuple[int, str, str]:
    tester = CommandTester(VerifyCommand())
    status = tester.execute(" ".join(_quote(arg) for arg in args))
    return status, tester.io.fetch_output(), tester.io.fetch_error()


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'" if any(c in arg for c in " '\"") else arg


def _cases() -> list[str]:
    if not CONFORMANCE.is_dir():
        return []
    return sorted(p.name for p in CONFORMANCE.iterdir() if (p / "bundle.sigstore.json").is_file())


def _case_args(case: Path) -> list[str]:
    artifact = case / "artifact" if (case / "artifact").is_file() else CONFORMANCE / "a.txt"
    identity = (case / "identity").read_text().strip() if (case / "identity").is_file() else None
    issuer = (case / "issuer").read_text().strip() if (case / "issuer").is_file() else None
    args = [
        str(artifact),
        "--bundle",
        str(case / "bundle.sigstore.json"),
        "--identity",
        identity or DEFAULT_IDENTITY,
        "--issuer",
        issuer or DEFAULT_ISSUER,
        "--format",
        "json",
    ]
    if (case / "trusted_root.json").is_file():
        args += ["--trusted-root", str(case / "trusted_root.json")]
    else:
        args.append("--offline")
    return args


@pytest.mark.parametrize("name", _cases())
def test_conformance_case(name: str) -> None:
    case = CONFORMANCE / name
    status, out, err = run_verify(*_case_args(case))
    should_pass = not name.endswith("_fail") and name not in DEVIATIONS
    if should_pass:
        assert status == 0, err
        document = json.loads(out)
        assert document["ok"] is True
        assert [f["verdict"] for f in document["files"]] == ["verified"]
    elif name in BAD_TRUST_ROOT:
        assert status == 2, (status, err)
        assert "cannot load the root of trust" in err
    else:
        assert status == 1, (status, err)
        document = json.loads(out)
        assert document["ok"] is False
        # One line naming the file and the reason.
        failure_lines = [
            line
            for line in err.splitlines()
            if line.startswith(document["files"][0]["file"] + ": ")
        ]
        assert failure_lines, err
        assert document["files"][0]["reason"]


def test_conformance_set_is_complete() -> None:
    cases = _cases()
    assert len(cases) == 70
    assert set(DEVIATIONS) <= set(cases)


GITLAB_IDENTITY = (
    "https://gitlab.com/facutuesca/gitlab-oidc-project//.gitlab-ci.yml@refs/heads/main"
)
GITLAB_FILE = "gitlab_oidc_project-0.0.3.tar.gz"


@pytest.fixture
def gitlab_release(tmp_path: Path) -> Path:
    """The real release file with only its PEP 740 attestation beside it."""
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(GITLAB_REAL / GITLAB_FILE, release)
    shutil.copy(GITLAB_REAL / f"{GITLAB_FILE}.publish.attestation", release)
    return release / GITLAB_FILE


def test_real_gitlab_attestation_accepted_for_main(gitlab_release: Path) -> None:
    status, out, err = run_verify(
        str(gitlab_release),
        "--gitlab-project",
        "facutuesca/gitlab-oidc-project",
        "--ref",
        "refs/heads/main",
        "--offline",
        "--format",
        "json",
    )
    assert status == 0, err
    (result,) = json.loads(out)["files"]
    assert result["material"] == "PEP 740 attestation"
    assert result["identity"] == GITLAB_IDENTITY
    assert result["commit"] == "72f7c63b75eb55ea80864962f0e645c93414da34"
    assert (
        result["job_url"] == "https://gitlab.com/facutuesca/gitlab-oidc-project/-/jobs/8415754949"
    )
    assert result["log_index"] == 149945774


def test_real_gitlab_bundle_accepted_with_identity_and_issuer() -> None:
    status, _, err = run_verify(
        str(GITLAB_REAL / GITLAB_FILE),
        "--bundle",
        str(GITLAB_REAL / f"{GITLAB_FILE}.sigstore.json"),
        "--identity",
        GITLAB_IDENTITY,
        "--issuer",
        "https://gitlab.com",
        "--offline",
    )
    assert status == 0, err


@pytest.mark.parametrize(
    "ref", ["refs/heads/dev", "refs/tags/v0.0.3", "refs/heads/main-2", "main", "refs/heads/mai"]
)
def test_real_gitlab_attestation_rejected_for_other_refs(gitlab_release: Path, ref: str) -> None:
    status, _, err = run_verify(
        str(gitlab_release),
        "--gitlab-project",
        "facutuesca/gitlab-oidc-project",
        "--ref",
        ref,
        "--offline",
    )
    assert status == 1
    assert f"{GITLAB_FILE}: failed: signer does not match" in err
    assert "ref is refs/heads/main" in err


@pytest.mark.parametrize("issuer", ["https://gitlab.example.com", "https://ops.gitlab.net"])
def test_real_gitlab_attestation_rejected_for_another_issuer(
    gitlab_release: Path, issuer: str
) -> None:
    status, _, err = run_verify(
        str(gitlab_release), "--identity", GITLAB_IDENTITY, "--issuer", issuer, "--offline"
    )
    assert status == 1
    assert f"issuer is https://gitlab.com, expected {issuer}" in err


def test_issuer_trailing_slash_is_normalised(gitlab_release: Path) -> None:
    """--issuer goes through the settings URL parser, which drops a trailing '/'."""
    status, out, err = run_verify(
        str(gitlab_release),
        "--identity",
        GITLAB_IDENTITY,
        "--issuer",
        "https://gitlab.com/",
        "--offline",
    )
    assert status == 0, err
    assert "(issuer https://gitlab.com)" in out


@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (("--project-id", "55235664", "--namespace-id", "12885801"), 0, None),
        (("--runner-environment", "gitlab-hosted", "--pipeline-source", "push"), 0, None),
        (
            ("--project-id", "55235665"),
            1,
            "project id is 55235664, expected 55235665 (--project-id)",
        ),
        (("--namespace-id", "1"), 1, "namespace id is 12885801, expected 1 (--namespace-id)"),
        (
            ("--pipeline-source", "schedule,web"),
            1,
            "pipeline source is push, expected schedule or web",
        ),
        (("--environment", "production"), 1, "environment is missing, expected production"),
    ],
)
def test_real_gitlab_certificate_claims(
    options: tuple[str, ...], status: int, message: str | None
) -> None:
    """gitlab.com's own certificate: project 55235664 in namespace 12885801, push, hosted."""
    code, _, err = run_verify(
        str(GITLAB_REAL / GITLAB_FILE),
        "--bundle",
        str(GITLAB_REAL / f"{GITLAB_FILE}.sigstore.json"),
        "--identity",
        GITLAB_IDENTITY,
        "--issuer",
        "https://gitlab.com",
        "--offline",
        *options,
    )
    assert code == status, err
    if message is not None:
        assert message in err


# --- the same real attestation as PyPI serves it: a provenance object (--lock) -----------------


def _provenance(repository: str) -> dict[str, object]:
    """The Integrity API's answer for the file, its publisher as warehouse records it."""
    attestation = json.loads((GITLAB_REAL / f"{GITLAB_FILE}.publish.attestation").read_text())
    return {
        "version": 1,
        "attestation_bundles": [
            {
                "publisher": {"kind": "GitLab", "repository": repository, "environment": ""},
                "attestations": [attestation],
            }
        ],
    }


@pytest.mark.parametrize(
    ("repository", "sha256_ok", "reason"),
    [
        ("facutuesca/gitlab-oidc-project", True, None),
        ("someone/else", True, "source repository is https://gitlab.com/facutuesca/"),
        ("facutuesca/gitlab-oidc-project", False, "sha256 differs"),
    ],
)
def test_real_provenance_verifies_for_its_publisher_and_file_only(
    repository: str, sha256_ok: bool, reason: str | None
) -> None:
    import hashlib

    from poetry_gitlab_release.signing.trust import make_verifier
    from poetry_gitlab_release.verify.provenance import verify_provenance

    digest = hashlib.sha256((GITLAB_REAL / GITLAB_FILE).read_bytes()).hexdigest()
    checked = verify_provenance(
        make_verifier(None, None, offline=True),  # Sigstore production, as pypi.org's
        _provenance(repository),
        filename=GITLAB_FILE,
        sha256=digest if sha256_ok else "0" * 64,
    )
    assert checked.ok is (reason is None), checked.reason
    if reason is None:
        assert checked.identity == GITLAB_IDENTITY and checked.log_index == 149945774
        (publisher,) = checked.publishers
        assert (publisher.kind, publisher.repository, publisher.issuer) == (
            "GitLab",
            repository,
            "https://gitlab.com",
        )
    else:
        assert reason in (checked.reason or "")
