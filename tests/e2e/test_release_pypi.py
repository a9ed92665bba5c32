"""`poetry gitlab-release --to gitlab,pypi` through the real poetry, against the stand-ins.

The job is a gitlab.com job (PyPI trusts GitLab ID tokens from https://gitlab.com only and
pypi-attestations' GitLab policy names gitlab.com): its ID tokens and certificates say
https://gitlab.com while its API calls go to the GitLab stand-in.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox.environment import release_job_environment
from sandbox.gitlab import GitLabStandIn
from sandbox.pypi import PyPIStandIn, TrustedPublisher
from sandbox.sigstore import SigstoreStandIn
from tests.fixtures.poetry import PoetryCli
from tests.sandbox.pypi.test_real_clients import production_root_shadowed_by

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-package"
PROJECT_ID = 100
PROJECT_PATH = "demo-group/hello-package"
TAG, VERSION = "v1.2.3", "1.2.3"
ARTIFACTS = ("hello_package-1.2.3.tar.gz", "hello_package-1.2.3-py3-none-any.whl")
BIN = Path(sys.executable).parent
MINTED = re.compile(r"pypi-[A-Za-z0-9_-]{40,}")


@dataclass
class Job:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    pypi: PyPIStandIn
    cli: PoetryCli
    project: Path
    env: dict[str, str]
    dry_run: subprocess.CompletedProcess[str]
    first: subprocess.CompletedProcess[str]
    uploads_after_first: int
    gitlab_after_first: list[tuple[str, str]]

    def run(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.cli.run("gitlab-release", *args, cwd=self.project, env={**self.env, **extra})

    def gitlab_files(self) -> list[tuple[str, str]]:
        return sorted((f.file_name, f.sha256) for f in self.gitlab.stored_files(PROJECT_ID))


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory, module_poetry_cli: PoetryCli) -> Iterator[Job]:
    root = tmp_path_factory.mktemp("pypi-release")
    with (
        GitLabStandIn() as gitlab,
        SigstoreStandIn(issuer="https://gitlab.com", state_dir=root / "sigstore") as sigstore,
        PyPIStandIn.trusting(sigstore, TrustedPublisher("hello-package", PROJECT_PATH)) as pypi,
    ):
        project = root / "hello-package"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("dist", ".venv"))
        env = release_job_environment(
            gitlab, sigstore, ref=TAG, identity_server="https://gitlab.com"
        )
        env.update(
            {
                "SOURCE_DATE_EPOCH": "1700000000",
                "GITLAB_RELEASE_TO": "gitlab,pypi",
                "GITLAB_RELEASE_PYPI_URL": pypi.upload_url,
            }
        )
        run = module_poetry_cli.run
        dry_run = run("gitlab-release", "--dry-run", cwd=project, env=env)
        first = run("gitlab-release", "--format", "json", cwd=project, env=env)
        stored = sorted((f.file_name, f.sha256) for f in gitlab.stored_files(PROJECT_ID))
        yield Job(
            gitlab, sigstore, pypi, module_poetry_cli, project, env, dry_run, first,
            pypi.uploads, stored,
        )  # fmt: skip


def test_dry_run_shows_what_would_go_where_and_uploads_nothing(job: Job) -> None:
    assert job.dry_run.returncode == 0, job.dry_run.stderr + job.dry_run.stdout
    out = job.dry_run.stdout
    assert "Checking what would be published: signatures to the generic registry" in out
    assert f"Checking what would be published to the PyPI index {job.pypi.upload_url}" in out
    assert "(Trusted Publishing)" in out
    pypi_part = out.split("<b>PyPI</b>")[-1] if "<b>PyPI</b>" in out else out.split("PyPI ")[-1]
    for name in ARTIFACTS:
        assert name in pypi_part
    assert "would upload (dry run)" in pypi_part


def test_releases_to_gitlab_then_pypi_with_attestations(job: Job) -> None:
    assert job.first.returncode == 0, job.first.stderr + job.first.stdout
    manifest = json.loads(job.first.stdout)
    assert manifest == json.loads((job.project / "dist" / "release.json").read_text())
    pypi = manifest["targets"]["pypi"]
    assert pypi["credential"] == "trusted-publishing"
    assert {f["name"]: f["status"] for f in pypi["files"]} == dict.fromkeys(ARTIFACTS, "uploaded")
    assert manifest["targets"]["gitlab"]["uploaded"] > 0
    gitlab_names = {name for name, _ in job.gitlab_after_first}
    assert set(ARTIFACTS) <= gitlab_names
    assert {f"{a}.sigstore.json" for a in ARTIFACTS} <= gitlab_names
    stored = {f.filename: f for f in job.pypi.files("hello-package")}
    assert set(stored) == set(ARTIFACTS)
    assert all(f.provenance is not None for f in stored.values())
    assert job.pypi.exchanges == 1
    assert job.pypi.oidc.burned == 1
    # Order: signatures, then GitLab packages, then PyPI.
    err = job.first.stderr
    assert err.index("to the generic registry") < err.index("to the PyPI index")


def test_rerun_uploads_nothing_anywhere(job: Job) -> None:
    again = job.run()
    assert again.returncode == 0, again.stderr + again.stdout
    assert job.pypi.uploads == job.uploads_after_first == 2
    assert job.gitlab_files() == job.gitlab_after_first
    assert job.pypi.exchanges == 1  # nothing to upload: the ID token is not exchanged again
    pypi_part = again.stdout.split("PyPI")[-1]
    assert pypi_part.count("already published (same sha256), skipped") == 2


def test_provenance_fetched_back_verifies_with_pypi_attestations(job: Job, tmp_path: Path) -> None:
    downloads = tmp_path / "downloads"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
         "--index-url", job.pypi.simple_url, "--dest", str(downloads), f"hello-package=={VERSION}"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    (wheel,) = downloads.glob("*.whl")
    manifest = json.loads(job.first.stdout)  # the run that uploaded (a rerun skips: no URL)
    (entry,) = [f for f in manifest["targets"]["pypi"]["files"] if f["name"] == wheel.name]
    provenance = httpx.get(
        entry["provenance_url"], headers={"Accept": "application/vnd.pypi.integrity.v1+json"}
    )
    assert provenance.status_code == 200
    provenance_file = tmp_path / "provenance.json"
    provenance_file.write_bytes(provenance.content)
    verify = subprocess.run(
        [str(BIN / "pypi-attestations"), "verify", "pypi", "--offline",
         "--provenance-file", str(provenance_file),
         "--repository", f"https://gitlab.com/{PROJECT_PATH}", str(wheel)],
        capture_output=True, text=True, check=False, timeout=120,
        env={**job.cli.environment(), **production_root_shadowed_by(job.sigstore, tmp_path / "x")},
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"OK: {wheel.name}" in verify.stdout + verify.stderr


def test_no_token_in_output_or_files(job: Job) -> None:
    texts = [job.dry_run.stdout, job.dry_run.stderr, job.first.stdout, job.first.stderr]
    texts += [p.read_text(errors="replace") for p in (job.project / "dist").iterdir()]
    for text in texts:
        assert job.env["PYPI_ID_TOKEN"] not in text
        assert MINTED.search(text) is None


def test_publisher_not_configured_is_one_line_with_the_fix(
    job: Job, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with PyPIStandIn.trusting(job.sigstore) as empty:  # no trusted publisher at all
        refused = job.run("--steps", "publish-pypi", GITLAB_RELEASE_PYPI_URL=empty.upload_url)
    assert refused.returncode == 1
    (line,) = [text for text in refused.stderr.splitlines() if text.startswith("Error:")]
    assert (
        "refused the Trusted Publishing exchange: invalid-publisher: valid token, but no " in line
    )
    assert (
        f"add a GitLab trusted publisher for project {PROJECT_PATH}, CI file .gitlab-ci.yml" in line
    )
    assert "Traceback" not in refused.stderr
