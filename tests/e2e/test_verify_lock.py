"""`poetry gitlab-verify --lock` through the real `poetry`, on a poetry.lock that `poetry lock`
itself wrote against the GitLab stand-in's registries.

Three packages from GitLab registries (two projects), locked by Poetry; then the lock is
verified (one row per file, pins written), a lock entry whose hash is not the registry's file is
refused, and `--install` installs exactly the locked files.
"""

from __future__ import annotations

import json
import re
import subprocess
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn
from tests.e2e.verify_support import make_sdist, make_wheel, publish, sign_release
from tests.fixtures.poetry import PoetryCli

pytestmark = pytest.mark.e2e

PACKAGES = {  # name -> project that publishes and signs it
    "alpha": "demo-group/hello-package",
    "beta": "demo-group/hello-package",
    "gamma": "demo-group/web-app",
}
VERSION = "1.0.0"


@dataclass
class Locked:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    cli: PoetryCli
    project: Path

    def env(self) -> dict[str, str]:
        return {
            "GITLAB_HOST": self.gitlab.url,
            "GITLAB_TOKEN": self.gitlab.tokens.read_api,
            "POETRY_HTTP_BASIC_GITLAB_USERNAME": "__token__",
            "POETRY_HTTP_BASIC_GITLAB_PASSWORD": self.gitlab.tokens.read_api,
            "POETRY_HTTP_BASIC_WEBAPP_USERNAME": "__token__",
            "POETRY_HTTP_BASIC_WEBAPP_PASSWORD": self.gitlab.tokens.read_api,
        }

    def verify(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.cli.run(
            "gitlab-verify",
            "--lock",
            "--trust-config",
            str(self.sigstore.trust_config_path),
            *args,
            cwd=cwd or self.project,
            env=self.env(),
        )


def _consumer(root: Path, gitlab: GitLabStandIn) -> Path:
    """A Poetry project depending on the three packages, from two GitLab registries."""
    hello = gitlab.project_id("demo-group/hello-package")
    web = gitlab.project_id("demo-group/web-app")
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f"""[project]
name = "consumer"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["alpha==1.0.0", "beta==1.0.0", "gamma==1.0.0"]

[tool.poetry]
package-mode = false

[tool.poetry.dependencies]
gamma = {{ source = "webapp" }}

[[tool.poetry.source]]
name = "gitlab"
url = "{gitlab.api_url}/projects/{hello}/packages/pypi/simple"
priority = "primary"

[[tool.poetry.source]]
name = "webapp"
url = "{gitlab.api_url}/projects/{web}/packages/pypi/simple"
priority = "explicit"
"""
    )
    return root


@pytest.fixture(scope="module")
def locked(
    tmp_path_factory: pytest.TempPathFactory, module_poetry_cli: PoetryCli
) -> Iterator[Locked]:
    home = tmp_path_factory.mktemp("verify-lock")
    with (
        GitLabStandIn(Scenario.default()) as gitlab,
        SigstoreStandIn(issuer=gitlab.url, state_dir=home / "sigstore") as sigstore,
    ):
        for name, project in PACKAGES.items():
            directory = home / "dist" / name
            directory.mkdir(parents=True)
            files = [
                make_wheel(directory, name=name, version=VERSION),
                make_sdist(directory, name=name, version=VERSION),
            ]
            signed = sign_release(sigstore, gitlab, files, project_path=project, ref=f"v{VERSION}")
            publish(gitlab, signed, project=project, name=name, version=VERSION)
        world = Locked(gitlab, sigstore, module_poetry_cli, _consumer(home / "consumer", gitlab))
        result = world.cli.run("lock", cwd=world.project, env=world.env())
        assert result.returncode == 0, result.stdout + result.stderr
        yield world


def test_every_locked_file_verified_one_row_each(locked: Locked) -> None:
    result = locked.verify("--format", "json", "--junit", str(locked.project / "junit.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    rows = report["files"]
    assert len(rows) == 6  # 3 packages x (wheel + sdist), as poetry locked them
    assert {row["package"] for row in rows} == set(PACKAGES)
    assert all(row["verdict"] == "verified" and row["check"] == "signature" for row in rows)
    gamma = next(row for row in rows if row["package"] == "gamma")
    web_id = str(locked.gitlab.project_id("demo-group/web-app"))
    assert gamma["claims"]["project_id"] == web_id and gamma["project_id"] == web_id
    assert report["pins_written"] and Path(report["pins_file"]).name == "gitlab-verify.lock"
    pins = (locked.project / "gitlab-verify.lock").read_text()
    assert pins.count("[[packages]]") == 3 and f'project-id = "{web_id}"' in pins
    junit = (locked.project / "junit.xml").read_text()
    assert junit.count("<testcase") == 6 and 'failures="0"' in junit

    table = locked.verify()
    assert table.returncode == 0
    assert "6 locked file(s): 6 verified, 0 failed" in table.stderr
    assert table.stdout.count("matches pin") == 6


def test_a_lock_hash_that_is_not_the_registry_file_is_refused(
    locked: Locked, tmp_path: Path
) -> None:
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "pyproject.toml").write_text((locked.project / "pyproject.toml").read_text())
    lock = (locked.project / "poetry.lock").read_text()
    # the first locked file of beta gets another sha256
    lines = lock.splitlines()
    start = lines.index('name = "beta"')
    for number in range(start, len(lines)):
        if "sha256:" in lines[number]:
            lines[number] = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, lines[number])
            break
    (tampered / "poetry.lock").write_text("\n".join(lines) + "\n")
    result = locked.verify("--pins", str(tmp_path / "pins.lock"), cwd=tampered)
    assert result.returncode == 1
    assert "differs from the registry's" in result.stderr
    assert "the locked file is not the published one" in result.stderr
    assert "5 verified, 1 failed" in result.stderr


def test_install_installs_exactly_the_locked_files(locked: Locked, tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    result = locked.verify("--install", "--python", str(python))
    assert result.returncode == 0, result.stderr
    assert "installed 3 locked package(s)" in result.stderr
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    versions = {p["name"]: p["version"] for p in json.loads(listed.stdout)}
    assert all(versions.get(name) == VERSION for name in PACKAGES)
