"""Local-file mode through the real `poetry` executable, outside any Poetry project."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.fixtures.poetry import PoetryCli

pytestmark = pytest.mark.e2e

GITLAB_REAL = (
    Path(__file__).resolve().parents[3] / "shared" / "testdata" / "sigstore" / "gitlab-real"
)
FILE = "gitlab_oidc_project-0.0.3.tar.gz"
PROJECT = "facutuesca/gitlab-oidc-project"


@pytest.mark.skipif(not GITLAB_REAL.is_dir(), reason="shared test data absent")
def test_real_gitlab_release_file_with_bundle_dir(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    work = tmp_path / "work"
    bundles = tmp_path / "bundles"
    work.mkdir()
    bundles.mkdir()
    shutil.copy(GITLAB_REAL / FILE, work)
    shutil.copy(GITLAB_REAL / f"{FILE}.sigstore.json", bundles)
    junit = tmp_path / "report.xml"
    common = ["gitlab-verify", str(work / FILE), "--bundle-dir", str(bundles), "--offline"]
    ok = poetry_cli.run(
        *common,
        "--gitlab-project",
        PROJECT,
        "--ref",
        "refs/heads/main",
        "--junit",
        str(junit),
        cwd=work,
    )
    assert ok.returncode == 0, ok.stderr
    assert "verified" in ok.stdout and "149945774" in ok.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"

    wrong = poetry_cli.run(
        *common,
        "--gitlab-project",
        PROJECT,
        "--ref",
        "refs/tags/v0.0.3",
        "--format",
        "json",
        cwd=work,
    )
    assert wrong.returncode == 1
    assert json.loads(wrong.stdout)["files"][0]["verdict"] == "failed"
    assert f"{FILE}: failed: signer does not match: identity is" in wrong.stderr


def test_missing_bundle_and_usage_errors(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    artifact = tmp_path / "a.whl"
    artifact.write_bytes(b"not signed")
    unsigned = poetry_cli.run(
        "gitlab-verify",
        str(artifact),
        "--identity",
        "https://x//y@z",
        "--issuer",
        "https://x",
        "--offline",
        cwd=tmp_path,
    )
    assert unsigned.returncode == 1
    assert "a.whl: unsigned: no a.whl.sigstore.json" in unsigned.stderr
    no_policy = poetry_cli.run("gitlab-verify", str(artifact), "--offline", cwd=tmp_path)
    assert no_policy.returncode == 2
    assert "cannot tell whose signature to expect" in no_policy.stderr
    missing = poetry_cli.run("gitlab-verify", "x.whl", "y.whl", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file: x.whl" in missing.stderr
    lock_only = poetry_cli.run(
        "gitlab-verify",
        str(artifact),
        "--pypi-url",
        "https://x",
        "--concurrency",
        "4",
        cwd=tmp_path,
    )
    assert lock_only.returncode == 2
    assert "--pypi-url, --concurrency only apply with --lock" in lock_only.stderr
    (tmp_path / "poetry.lock").write_text('[metadata]\nlock-version = "2.1"\n')
    for url, message in (
        ("ftp://pypi.example", "the scheme must be https"),
        ("http://pypi.example", "refusing plain http:// for 'http://pypi.example' from --pypi-url"),
    ):
        bad_url = poetry_cli.run("gitlab-verify", "--lock", "--pypi-url", url, cwd=tmp_path)
        assert bad_url.returncode == 2, bad_url.stderr
        assert message in bad_url.stderr
