"""The whole story through the real `poetry`: a tag pipeline's job runs `gitlab-release`, then a
consumer outside any project runs `gitlab-verify` on what was published."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.environment import RELEASE_PROJECT, release_job_environment
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn
from tests.fixtures.poetry import PoetryCli

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-package"
VERSION = "2.0.0"


@dataclass
class Published:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    cli: PoetryCli
    home: Path

    def verify(self, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
        consumer = {
            "GITLAB_HOST": self.gitlab.url,
            "GITLAB_TOKEN": token or self.gitlab.tokens.read_api,
        }
        return self.cli.run(
            "gitlab-verify",
            f"hello-package=={VERSION}",
            "--gitlab-project",
            RELEASE_PROJECT,
            "--trust-config",
            str(self.sigstore.trust_config_path),
            *args,
            cwd=self.home,
            env=consumer,
        )


@pytest.fixture(scope="module")
def published(
    tmp_path_factory: pytest.TempPathFactory, module_poetry_cli: PoetryCli
) -> Iterator[Published]:
    home = tmp_path_factory.mktemp("release-then-verify")
    with (
        GitLabStandIn(Scenario.default()) as gitlab,
        SigstoreStandIn(issuer=gitlab.url, state_dir=home / "sigstore") as sigstore,
    ):
        project = home / "hello-package"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".venv"))
        job = release_job_environment(gitlab, sigstore, ref=f"v{VERSION}")
        released = module_poetry_cli.run("gitlab-release", cwd=project, env=job)
        assert released.returncode == 0, released.stdout + released.stderr
        yield Published(gitlab, sigstore, module_poetry_cli, home)


def test_consumer_verifies_what_the_release_job_published(
    published: Published, tmp_path: Path
) -> None:
    junit = tmp_path / "verification.xml"
    result = published.verify(
        "--format", "json", "--junit", str(junit), "--dest", str(tmp_path / "dl")
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    files = {entry["file"]: entry for entry in report["files"]}
    assert set(files) == {
        f"hello_package-{VERSION}.tar.gz",
        f"hello_package-{VERSION}-py3-none-any.whl",
        f"hello_package-{VERSION}.cdx.json",  # the signed SBOM, a row of its own
    }
    expected = f"{published.gitlab.url.replace('http://', 'https://')}/{RELEASE_PROJECT}//.gitlab-ci.yml@refs/tags/v{VERSION}"
    for entry in files.values():
        assert entry["verdict"] == "verified"
        assert entry["identity"] == expected
    suite = ET.parse(junit).getroot()
    assert len(list(suite.iter("testcase"))) == 3
    assert not list(suite.iter("failure"))
    assert sorted(path.name for path in (tmp_path / "dl").iterdir()) == sorted(files)


def test_consumer_expecting_another_ref_rejects_the_release(published: Published) -> None:
    result = published.verify("--ref", "refs/heads/main")
    assert result.returncode == 1
    assert "refs/tags/v2.0.0" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_consumer_with_a_deploy_token(published: Published) -> None:
    result = published.verify(token=published.gitlab.tokens.deploy_token)
    assert result.returncode == 0, result.stderr
    assert "3 of 3 file(s) verified" in result.stderr  # wheel, sdist and SBOM
