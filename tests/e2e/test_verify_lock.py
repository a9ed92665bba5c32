"""`poetry gitlab-verify --lock` through the real `poetry`, on a poetry.lock that `poetry lock`
itself wrote against the GitLab stand-in's registries and a PyPI stand-in.

Three packages from GitLab registries (two projects) and two from the PyPI stand-in (`delta`
uploaded by Trusted Publishing with PEP 740 attestations of a gitlab.com job, `epsilon` with a
classic API token and none), locked by Poetry; then the lock is verified (one row per file:
signature, provenance or "no provenance"; pins written), a lock entry whose hash is not the
published file is refused (GitLab: against the index; PyPI: against the provenance), and
`--install` installs exactly the locked files, the PyPI ones from the stand-in's index.

The GitLab packages are signed for the GitLab stand-in's issuer; PEP 740 provenance must be a
gitlab.com Trusted Publisher's (PyPI and the provenance policy name gitlab.com only), so it is
signed on a second Sigstore stand-in whose issuer is https://gitlab.com: the command gets
--trust-config for the GitLab side and --pypi-trust-config for PyPI's, as a self-managed GitLab
with its own Sigstore and pypi.org (Sigstore production) would.
"""

from __future__ import annotations

import json
import re
import subprocess
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.pypi import PyPIStandIn, TrustedPublisher
from sandbox.sigstore import SigstoreStandIn
from tests.e2e.verify_support import (
    make_sdist,
    make_wheel,
    pep740_attestations,
    publish,
    sign_release,
    trusted_publishing_token,
    upload_to_pypi,
)
from tests.fixtures.poetry import PoetryCli

pytestmark = pytest.mark.e2e

PACKAGES = {  # name -> project that publishes and signs it
    "alpha": "demo-group/hello-package",
    "beta": "demo-group/hello-package",
    "gamma": "demo-group/web-app",
}
PYPI_PUBLISHER = "demo-group/delta"  # the gitlab.com project that publishes delta to PyPI
PYPI_PACKAGES = ("delta", "epsilon")  # delta: with PEP 740 provenance; epsilon: without
VERSION = "1.0.0"
DELTA_IDENTITY = f"https://gitlab.com/{PYPI_PUBLISHER}//.gitlab-ci.yml@refs/tags/v{VERSION}"


@dataclass
class Locked:
    gitlab: GitLabStandIn
    pypi: PyPIStandIn
    trust_config: Path
    pypi_trust_config: Path
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

    def verify(
        self, *args: str, cwd: Path | None = None, pypi_trust_config: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.cli.run(
            "gitlab-verify",
            "--lock",
            "--trust-config",
            str(self.trust_config),
            "--pypi-trust-config",
            str(pypi_trust_config or self.pypi_trust_config),
            "--pypi-url",
            self.pypi.url,
            *args,
            cwd=cwd or self.project,
            env=self.env(),
        )


def _publish_to_pypi(home: Path, pypi: PyPIStandIn, gitlab_com: SigstoreStandIn) -> None:
    """delta by Trusted Publishing with attestations; epsilon by API token, without."""
    tag = f"v{VERSION}"
    for name in PYPI_PACKAGES:
        directory = home / "dist" / name
        directory.mkdir(parents=True)
        files = [
            make_wheel(directory, name=name, version=VERSION),
            make_sdist(directory, name=name, version=VERSION),
        ]
        if name == "delta":
            attestations = pep740_attestations(
                gitlab_com, files, project_path=PYPI_PUBLISHER, ref=tag
            )
            id_token = gitlab_com.mint_token(project_path=PYPI_PUBLISHER, ref=tag, audience="pypi")
            token = trusted_publishing_token(pypi.url, id_token)
        else:
            attestations, token = {}, pypi.api_token(name)
        for path in files:
            upload_to_pypi(
                pypi.upload_url,
                path,
                token,
                name=name,
                version=VERSION,
                attestation=attestations.get(path.name),
            )
    assert all(f.provenance is not None for f in pypi.files("delta"))
    assert all(f.provenance is None for f in pypi.files("epsilon"))


def _consumer(root: Path, gitlab: GitLabStandIn, pypi: PyPIStandIn) -> Path:
    """A Poetry project depending on the five packages: three from two GitLab registries, two
    from the PyPI stand-in's simple index."""
    hello = gitlab.project_id("demo-group/hello-package")
    web = gitlab.project_id("demo-group/web-app")
    root.mkdir()
    (root / "pyproject.toml").write_text(
        f"""[project]
name = "consumer"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = [
    "alpha==1.0.0", "beta==1.0.0", "gamma==1.0.0", "delta==1.0.0", "epsilon==1.0.0",
]

[tool.poetry]
package-mode = false

[tool.poetry.dependencies]
gamma = {{ source = "webapp" }}
delta = {{ source = "standin-pypi" }}
epsilon = {{ source = "standin-pypi" }}

[[tool.poetry.source]]
name = "gitlab"
url = "{gitlab.api_url}/projects/{hello}/packages/pypi/simple"
priority = "primary"

[[tool.poetry.source]]
name = "webapp"
url = "{gitlab.api_url}/projects/{web}/packages/pypi/simple"
priority = "explicit"

[[tool.poetry.source]]
name = "standin-pypi"
url = "{pypi.url}/simple"
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
        SigstoreStandIn(
            issuer="https://gitlab.com", state_dir=home / "sigstore-gitlab-com"
        ) as gitlab_com,
        PyPIStandIn.trusting(gitlab_com, TrustedPublisher("delta", PYPI_PUBLISHER)) as pypi,
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
        _publish_to_pypi(home, pypi, gitlab_com)
        world = Locked(
            gitlab,
            pypi,
            sigstore.trust_config_path,
            gitlab_com.trust_config_path,
            module_poetry_cli,
            _consumer(home / "consumer", gitlab, pypi),
        )
        result = world.cli.run("lock", cwd=world.project, env=world.env())
        assert result.returncode == 0, result.stdout + result.stderr
        yield world


def _rows_by_package(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["package"], []).append(row)
    return grouped


def test_every_locked_file_gets_its_verdict_one_row_each(locked: Locked) -> None:
    result = locked.verify("--format", "json", "--junit", str(locked.project / "junit.xml"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    rows = report["files"]
    assert len(rows) == 10  # 5 packages x (wheel + sdist), as poetry locked them
    by_package = _rows_by_package(rows)
    assert set(by_package) == set(PACKAGES) | set(PYPI_PACKAGES)
    assert all(len(files) == 2 for files in by_package.values())
    assert report["ok"] is True
    assert report["counts"] == {
        "verified": 8,
        "failed": 0,
        "unsigned": 0,
        "no provenance": 2,
        "not checked": 0,
    }
    for name in PACKAGES:  # GitLab: a Sigstore signature from the project's tag pipeline
        assert [(r["check"], r["verdict"]) for r in by_package[name]] == [
            ("signature", "verified")
        ] * 2
        assert all(r["source"].startswith("GitLab project ") for r in by_package[name])
    pypi_label = locked.pypi.url.removeprefix("http://")
    for row in by_package["delta"]:  # PyPI with PEP 740 provenance: verified by it
        assert (row["check"], row["verdict"], row["ok"]) == ("provenance", "verified", True)
        assert row["source"] == pypi_label and row["reason"] is None
        assert row["identity"] == DELTA_IDENTITY
        (publisher,) = row["publishers"]
        assert (publisher["kind"], publisher["repository"], publisher["issuer"]) == (
            "GitLab",
            PYPI_PUBLISHER,
            "https://gitlab.com",
        )
        assert isinstance(row["log_index"], int)
    for row in by_package["epsilon"]:  # PyPI without provenance: said so, not a failure
        assert (row["check"], row["verdict"], row["ok"]) == ("provenance", "no provenance", True)
        assert row["source"] == pypi_label and row["identity"] is None
        assert row["reason"] == "PyPI has no PEP 740 provenance for this file"
    gamma = by_package["gamma"][0]
    web_id = str(locked.gitlab.project_id("demo-group/web-app"))
    assert gamma["claims"]["project_id"] == web_id and gamma["project_id"] == web_id
    assert report["pins_written"] and Path(report["pins_file"]).name == "gitlab-verify.lock"
    pins = (locked.project / "gitlab-verify.lock").read_text()
    assert pins.count("[[packages]]") == 5 and f'project-id = "{web_id}"' in pins
    assert f'repository = "{PYPI_PUBLISHER}"' in pins
    junit = (locked.project / "junit.xml").read_text()
    assert junit.count("<testcase") == 10 and 'failures="0"' in junit
    assert 'skipped="2"' in junit and junit.count("no provenance: PyPI has no PEP 740") == 2

    table = locked.verify()
    assert table.returncode == 0, table.stdout + table.stderr
    assert (
        "10 locked file(s): 8 verified, 0 failed, 2 without provenance, 0 not checked"
        in table.stderr
    )
    assert table.stdout.count("matches pin") == 10
    lines = [line.split() for line in table.stdout.splitlines()]
    delta = [cells for cells in lines if cells[:1] == ["delta"]]
    epsilon = [cells for cells in lines if cells[:1] == ["epsilon"]]
    assert len(delta) == len(epsilon) == 2
    assert all(
        c[4] == "provenance" and c[5] == DELTA_IDENTITY and c[-1] == "verified" for c in delta
    )
    assert all(c[4] == "provenance" and c[-2:] == ["no", "provenance"] for c in epsilon)


def _tampered(locked: Locked, tmp_path: Path, package: str) -> Path:
    """A copy of the consumer whose lock gives another sha256 to `package`'s first file."""
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / "pyproject.toml").write_text((locked.project / "pyproject.toml").read_text())
    lines = (locked.project / "poetry.lock").read_text().splitlines()
    start = lines.index(f'name = "{package}"')
    for number in range(start, len(lines)):
        if "sha256:" in lines[number]:
            lines[number] = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, lines[number])
            break
    else:
        raise AssertionError(f"no sha256 for {package} in the lock")
    (tampered / "poetry.lock").write_text("\n".join(lines) + "\n")
    return tampered


def test_a_lock_hash_that_is_not_the_registry_file_is_refused(
    locked: Locked, tmp_path: Path
) -> None:
    tampered = _tampered(locked, tmp_path, "beta")
    result = locked.verify("--pins", str(tmp_path / "pins.lock"), cwd=tampered)
    assert result.returncode == 1
    assert "differs from the registry's" in result.stderr
    assert "the locked file is not the published one" in result.stderr
    assert "10 locked file(s): 7 verified, 1 failed, 2 without provenance" in result.stderr


def test_a_lock_hash_that_is_not_the_file_of_the_provenance_is_refused(
    locked: Locked, tmp_path: Path
) -> None:
    tampered = _tampered(locked, tmp_path, "delta")
    result = locked.verify("--format", "json", "--pins", str(tmp_path / "pins.lock"), cwd=tampered)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    (failed,) = [row for row in report["files"] if not row["ok"]]
    assert (failed["package"], failed["check"], failed["verdict"]) == (
        "delta",
        "provenance",
        "failed",
    )
    assert failed["sha256"] == "0" * 64
    assert failed["reason"] == (
        f"the attestation is for another artifact (subject {failed['file']}): sha256 differs"
    )
    assert report["counts"]["verified"] == 7 and report["counts"]["no provenance"] == 2
    assert f"{failed['file']}: failed: {failed['reason']}" in result.stderr


def _installed(python: Path) -> dict[str, str]:
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {p["name"]: p["version"] for p in json.loads(listed.stdout)}


def test_install_installs_exactly_the_locked_files(locked: Locked, tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(target)
    python = target / "bin" / "python"
    seeded = _installed(python)  # pip (and setuptools on older Pythons)
    served = len(locked.pypi.requests)
    result = locked.verify(
        "--install", "--python", str(python), "--pins", str(tmp_path / "pins.lock")
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "installed 5 locked package(s)" in result.stderr
    added = {name: v for name, v in _installed(python).items() if seeded.get(name) != v}
    assert added == dict.fromkeys([*PACKAGES, *PYPI_PACKAGES], VERSION)
    downloads = sorted(
        path.rsplit("/", 1)[-1]
        for method, path, status, _ in locked.pypi.requests[served:]
        if method == "GET" and path.startswith("/packages/") and status == 200
    )
    assert downloads == sorted(f.filename for n in PYPI_PACKAGES for f in locked.pypi.files(n))
    assert len(downloads) == 4


def test_without_pypi_url_the_standin_index_is_just_another_index(
    locked: Locked, tmp_path: Path
) -> None:
    """Only the index named by --pypi-url (default pypi.org) is PyPI: another is not checked."""
    result = locked.cli.run(
        "gitlab-verify",
        "--lock",
        "--trust-config",
        str(locked.trust_config),
        "--pins",
        str(tmp_path / "pins.lock"),
        "--format",
        "json",
        cwd=locked.project,
        env=locked.env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["counts"]["verified"] == 6 and report["counts"]["not checked"] == 4
    unchecked = {row["package"] for row in report["files"] if row["verdict"] == "not checked"}
    assert unchecked == set(PYPI_PACKAGES)


def test_provenance_is_checked_against_the_pypi_root_not_the_gitlab_one(
    locked: Locked, tmp_path: Path
) -> None:
    """PyPI provenance chains to its own Sigstore instance: given the GitLab side's root for it,
    delta's attestations do not verify; the GitLab signatures are unaffected."""
    result = locked.verify(
        "--format",
        "json",
        "--pins",
        str(tmp_path / "pins.lock"),
        pypi_trust_config=locked.trust_config,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    failed = {row["package"] for row in report["files"] if not row["ok"]}
    assert failed == {"delta"}
    assert report["counts"] == {
        "verified": 6,
        "failed": 2,
        "unsigned": 0,
        "no provenance": 2,
        "not checked": 0,
    }
