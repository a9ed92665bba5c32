"""`poetry gitlab-release` end to end: the real poetry executable with the plugin, the example
project, both stand-ins, and the CI variables a real GitLab tag or branch pipeline sets.

One signed and published tag release is shared (module scope) by the read-only assertions;
tests that change the registry get their own stand-ins.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox.environment import release_job_environment
from sandbox.gitlab import GitLabStandIn
from sandbox.gitlab.releases import store as releases_store
from sandbox.sigstore import SigstoreStandIn
from tests.fixtures.poetry import PoetryCli

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello-package"
PROJECT_ID = 100
PROJECT_PATH = "demo-group/hello-package"
TAG = "v1.2.3"
VERSION = "1.2.3"
EPOCH = "1700000000"
ARTIFACTS = ("hello_package-1.2.3.tar.gz", "hello_package-1.2.3-py3-none-any.whl")
SBOM = "hello_package-1.2.3.cdx.json"


@dataclass
class Release:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    cli: PoetryCli
    project: Path
    env: dict[str, str]
    token: str
    result: subprocess.CompletedProcess[str]

    @property
    def dist(self) -> Path:
        return self.project / "dist"

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.cli.run(
            "gitlab-release", *args, cwd=self.project, env={**self.env, **(env or {})}
        )

    def stored(self) -> list[tuple[str, str, str]]:
        return sorted(
            (f.package_type, f.file_name, f.sha256) for f in self.gitlab.stored_files(PROJECT_ID)
        )


def copy_example(destination: Path) -> Path:
    shutil.copytree(EXAMPLE, destination, ignore=shutil.ignore_patterns("dist", ".venv"))
    return destination


@dataclass
class Pipeline:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    project: Path
    env: dict[str, str]


@contextmanager
def pipeline(root: Path, *, ref: str = TAG, ref_type: str = "tag") -> Iterator[Pipeline]:
    """Fresh stand-ins, a copy of the example, and what GitLab sets in a job with `id_tokens`."""
    with (
        GitLabStandIn() as gitlab,
        SigstoreStandIn(issuer=gitlab.url, state_dir=root / "sigstore") as sigstore,
    ):
        env = release_job_environment(gitlab, sigstore, ref=ref, ref_type=ref_type)
        env["SOURCE_DATE_EPOCH"] = EPOCH
        yield Pipeline(gitlab, sigstore, copy_example(root / "hello-package"), env)


@pytest.fixture(scope="module")
def release(
    tmp_path_factory: pytest.TempPathFactory, module_poetry_cli: PoetryCli
) -> Iterator[Release]:
    with pipeline(tmp_path_factory.mktemp("release")) as job:
        result = module_poetry_cli.run(
            "gitlab-release", "--cosign-compat", cwd=job.project, env=job.env
        )
        yield Release(
            job.gitlab,
            job.sigstore,
            module_poetry_cli,
            job.project,
            job.env,
            job.env["SIGSTORE_ID_TOKEN"],
            result,
        )


def test_full_release_publishes_signatures_and_packages(release: Release) -> None:
    assert release.result.returncode == 0, release.result.stderr + release.result.stdout
    stored = release.stored()
    names = {(kind, name) for kind, name, _ in stored}
    for artifact in ARTIFACTS:
        assert ("pypi", artifact) in names
        for suffix in (".sigstore.json", ".publish.attestation", ".sig", ".crt"):
            assert ("generic", artifact + suffix) in names
    # Signatures first: every generic upload happened before the first PyPI upload.
    order = [f.package_type for f in release.gitlab.stored_files(PROJECT_ID)]
    assert order.index("pypi") > max(i for i, kind in enumerate(order) if kind == "generic")
    # What was stored is what is in dist/.
    for kind, name, sha256 in stored:
        local = release.dist / name
        import hashlib

        assert hashlib.sha256(local.read_bytes()).hexdigest() == sha256, (kind, name)
    # One Fulcio certificate for the whole release.
    assert release.sigstore.fulcio_requests == 1


def test_summary_and_manifest(release: Release) -> None:
    out = release.result.stdout
    for artifact in ARTIFACTS:
        assert artifact in out
    assert "signature  " in out and "package    " in out
    manifest = json.loads((release.dist / "release.json").read_text())
    assert manifest["package"] == "hello-package"
    assert manifest["version"] == VERSION
    assert manifest["version_source"] == "CI_COMMIT_TAG"
    identity = (
        f"https://127.0.0.1:{release.gitlab.port}/{PROJECT_PATH}//.gitlab-ci.yml@refs/tags/{TAG}"
    )
    assert manifest["identity"] == identity
    assert manifest["issuer"] == release.gitlab.url
    assert manifest["ref"] == f"refs/tags/{TAG}"
    project = release.gitlab.scenario.project(PROJECT_PATH)
    assert project is not None
    claims = manifest["claims"]
    assert claims["project_id"] == str(project.id)
    assert claims["namespace_id"] == str(project.namespace_id)
    assert claims["runner_environment"] == "gitlab-hosted"
    assert claims["pipeline_source"] == "push"
    assert claims["identity"] == identity and claims["ref"] == f"refs/tags/{TAG}"
    files = {entry["file"]: entry for entry in manifest["files"]}
    assert set(files) == {*ARTIFACTS, SBOM}
    # The SBOM: signed (one certificate for the release), published to the generic registry.
    sbom = files.pop(SBOM)
    assert (sbom["kind"], sbom["status"]) == ("sbom", "uploaded")
    assert sbom["url"].endswith(f"/packages/generic/hello-package/{VERSION}/{SBOM}")
    assert isinstance(sbom["rekor_log_index"], int)
    assert sbom["attestation_rekor_log_index"] is None  # PEP 740 is for distributions
    for entry in files.values():
        assert entry["status"] == "uploaded"
        assert isinstance(entry["rekor_log_index"], int)
        assert isinstance(entry["attestation_rekor_log_index"], int)
        assert entry["signature_url"].endswith(
            f"/packages/generic/hello-package/{VERSION}/{entry['file']}.sigstore.json"
        )
        assert entry["url"].startswith(release.gitlab.api_url)
        assert entry["sha256"] in entry["url"]


def test_no_token_in_output_or_files(release: Release) -> None:
    secrets = [release.token, release.env["CI_JOB_TOKEN"]]
    texts = [release.result.stdout, release.result.stderr]
    texts += [p.read_text(errors="replace") for p in release.dist.iterdir() if p.suffix == ".json"]
    for secret in secrets:
        for text in texts:
            assert secret not in text


def test_build_metadata_is_stamped_in_memory_only(release: Release) -> None:
    import tarfile
    import zipfile

    assert (release.project / "pyproject.toml").read_text() == (
        EXAMPLE / "pyproject.toml"
    ).read_text()
    assert (release.project / ".venv").is_dir()  # the in-project, cacheable venv
    with zipfile.ZipFile(release.dist / ARTIFACTS[1]) as wheel:
        metadata = wheel.read("hello_package-1.2.3.dist-info/METADATA").decode()
    project_url = f"{release.gitlab.url}/{PROJECT_PATH}"
    assert "Version: 1.2.3" in metadata
    assert f"Project-URL: Source, {project_url}" in metadata
    with tarfile.open(release.dist / ARTIFACTS[0]) as sdist:
        member = sdist.extractfile("hello_package-1.2.3/pyproject.toml")
        assert member is not None
        stamped = member.read().decode()
    assert 'version = "1.2.3"' in stamped
    assert project_url in stamped


def test_bundles_verify_with_the_sigstore_cli(release: Release) -> None:
    identity = (
        f"https://127.0.0.1:{release.gitlab.port}/{PROJECT_PATH}//.gitlab-ci.yml@refs/tags/{TAG}"
    )
    env = release.cli.environment()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sigstore",
            "--trust-config",
            str(release.sigstore.trust_config_path),
            "verify",
            "identity",
            "--cert-identity",
            identity,
            "--cert-oidc-issuer",
            release.gitlab.url,
            *ARTIFACTS,
        ],
        cwd=release.dist,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("OK:") == len(ARTIFACTS)


def test_attestations_load_with_pypi_attestations(release: Release) -> None:
    from pypi_attestations import Attestation

    from poetry_gitlab_release.signing.material import bundle_from_attestation

    for artifact in ARTIFACTS:
        raw = (release.dist / (artifact + ".publish.attestation")).read_bytes()
        attestation = Attestation.model_validate_json(raw)
        claims = attestation.certificate_claims
        assert claims["1.3.6.1.4.1.57264.1.14"] == f"refs/tags/{TAG}"
        assert bundle_from_attestation(json.loads(raw)).signing_certificate is not None


def test_pip_installs_the_published_package(release: Release, tmp_path: Path) -> None:
    host = release.gitlab.url.split("://", 1)[1]
    index = (
        f"http://__token__:{release.gitlab.tokens.personal}@{host}"
        f"/api/v4/projects/{PROJECT_ID}/packages/pypi/simple"
    )
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--index-url",
            index,
            "--target",
            str(target),
            f"hello-package=={VERSION}",
        ],
        capture_output=True,
        text=True,
        check=False,
        env=release.cli.environment({"PIP_CONFIG_FILE": "/dev/null"}),
    )
    assert result.returncode == 0, result.stderr
    run = subprocess.run(
        [sys.executable, "-c", "import hello_package as h; print(h.greeting('pip'))"],
        env={"PYTHONPATH": str(target)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "Hello, pip!"


def test_rerun_is_a_no_op(release: Release) -> None:
    before = release.stored()
    page = releases_store(release.gitlab.app).release(PROJECT_ID, TAG)
    assert page is not None, "the first run created no Release page"
    links_before = sorted((link.name, link.url) for link in page.links)
    release.gitlab.reset_log()
    result = release.run("--cosign-compat", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert release.stored() == before
    # The Release page was read and found as it should be: nothing written.
    writes = [e for e in release.gitlab.request_log if "/releases" in e.path and e.method != "GET"]
    assert writes == []
    assert sorted((link.name, link.url) for link in page.links) == links_before
    release.gitlab.reset_log()
    quiet = release.run("--steps", "publish-packages", "--no-release-page")
    assert quiet.returncode == 0, quiet.stderr
    assert not [e for e in release.gitlab.request_log if "/releases" in e.path]
    manifest = json.loads(result.stdout)
    for entry in manifest["files"]:
        assert entry["status"] == "present"
        assert {s["status"] for s in entry["signatures"]} == {"signed-earlier"}
    # dist/ now holds the published signatures again.
    stored = {name: sha for _, name, sha in before}
    import hashlib

    for name, sha in stored.items():
        assert hashlib.sha256((release.dist / name).read_bytes()).hexdigest() == sha


def test_verify_names_the_field_that_differs(release: Release) -> None:
    result = release.run("--steps", "verify", "--expected-ref", "refs/tags/v9.9.9")
    assert result.returncode == 1
    assert "hello_package-1.2.3.tar.gz.sigstore.json does not match the expected signer" in (
        result.stderr
    )
    assert "ref is refs/tags/v1.2.3, expected refs/tags/v9.9.9" in result.stderr


def test_changed_artifact_under_the_same_version_is_refused(release: Release) -> None:
    # Module-scoped stand-ins: this test runs after the read-only ones above (file order).
    before = release.stored()
    module = release.project / "src" / "hello_package" / "__init__.py"
    original = module.read_text()
    module.write_text(original + "\n# a change after the release\n")
    try:
        result = release.run()
    finally:
        module.write_text(original)
    assert result.returncode == 1
    assert "already published with other content" in result.stderr
    assert "nothing was uploaded" in result.stderr
    assert release.stored() == before


def test_dry_run_lists_and_uploads_nothing(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    with pipeline(tmp_path) as job:
        gitlab, project, env = job.gitlab, job.project, job.env
        result = poetry_cli.run("gitlab-release", "--dry-run", cwd=project, env=env)
        assert result.returncode == 0, result.stderr
        assert "would upload (dry run)" in result.stdout
        assert gitlab.stored_files(PROJECT_ID) == []
        manifest = json.loads((project / "dist" / "release.json").read_text())
        assert manifest["dry_run"] is True
        assert {entry["status"] for entry in manifest["files"]} == {"would-upload"}


def test_branch_pipeline_with_steps_split_across_jobs(
    poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    with pipeline(tmp_path, ref="main", ref_type="branch") as ci:
        gitlab, project, env = ci.gitlab, ci.project, ci.env

        def job(step: str) -> subprocess.CompletedProcess[str]:
            job_env = dict(env)
            if step != "sign":
                job_env.pop("SIGSTORE_ID_TOKEN")  # only the signing job has id_tokens
            return poetry_cli.run("gitlab-release", "--steps", step, cwd=project, env=job_env)

        def kinds() -> set[str]:
            return {f.package_type for f in gitlab.stored_files(PROJECT_ID)}

        for step in ("build", "sign", "verify"):
            result = job(step)
            assert result.returncode == 0, (step, result.stderr)
        # Packages before their signatures are refused, and nothing goes up.
        early = job("publish-packages")
        assert early.returncode == 1
        assert "are not in the generic registry" in early.stderr
        assert "packages would be published unsigned" in early.stderr
        assert kinds() == set()
        signatures = job("publish-signatures")
        assert signatures.returncode == 0, signatures.stderr
        assert kinds() == {"generic"}
        packages = job("publish-packages")
        assert packages.returncode == 0, packages.stderr
        stored = {(f.package_type, f.file_name) for f in gitlab.stored_files(PROJECT_ID)}
        assert ("pypi", "hello_package-0.1.0-py3-none-any.whl") in stored
        assert ("generic", "hello_package-0.1.0.tar.gz.sigstore.json") in stored
        manifest = json.loads((project / "dist" / "release.json").read_text())
        assert manifest["version_source"] == "pyproject.toml"
        assert manifest["ref"] == "refs/heads/main"
        assert manifest["identity"].endswith("//.gitlab-ci.yml@refs/heads/main")


def test_missing_token_in_ci_gives_the_fix(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    with pipeline(tmp_path) as job:
        gitlab, project, env = job.gitlab, job.project, job.env
        env["SIGSTORE_ID_TOKEN"] = ""
        result = poetry_cli.run("gitlab-release", "--steps", "build,sign", cwd=project, env=env)
        assert result.returncode == 1
        assert "SIGSTORE_ID_TOKEN is not set" in result.stderr
        assert "id_tokens:" in result.stderr and "aud: sigstore" in result.stderr
        assert gitlab.stored_files(PROJECT_ID) == []


def test_expired_token_fails_with_the_fix(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    with pipeline(tmp_path) as job:
        gitlab, sigstore, project = job.gitlab, job.sigstore, job.project
        expired = sigstore.mint_token(
            project_path=PROJECT_PATH,
            project_id=PROJECT_ID,
            ref=TAG,
            ref_type="tag",
            server_url=gitlab.url,
            issued_at=int(time.time()) - 3600,
            lifetime=300,
        )
        env = {**job.env, "SIGSTORE_ID_TOKEN": expired}
        result = poetry_cli.run("gitlab-release", "--steps", "build,sign", cwd=project, env=env)
        assert result.returncode == 1
        assert "identity token expired at" in result.stderr
        assert "job's timeout" in result.stderr
        assert expired not in result.stderr + result.stdout
        assert sigstore.fulcio_requests == 0


def test_tag_that_is_not_a_version_is_a_usage_error(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    project = copy_example(tmp_path / "hello-package")
    result = poetry_cli.run(
        "gitlab-release", "--steps", "build", cwd=project, env={"CI_COMMIT_TAG": "release-five"}
    )
    assert result.returncode == 2
    assert "CI_COMMIT_TAG 'release-five' is not a PEP 440 version" in result.stderr


def test_publish_with_a_deploy_token_is_idempotent(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    """A deploy token (write_package_registry) publishes; it cannot read the Packages API, so
    what is already there comes from the simple index and generic file GETs."""
    with pipeline(tmp_path) as job:
        env = {**job.env, "GITLAB_TOKEN": job.gitlab.tokens.deploy_token}
        first = poetry_cli.run("gitlab-release", cwd=job.project, env=env)
        assert first.returncode == 0, first.stderr
        stored = sorted(f.file_name for f in job.gitlab.stored_files(PROJECT_ID))
        packages = job.gitlab.stored_files(PROJECT_ID, package_type="pypi")
        assert sorted(f.file_name for f in packages) == sorted(ARTIFACTS)
        job.gitlab.reset_log()
        again = poetry_cli.run("gitlab-release", "--format", "json", cwd=job.project, env=env)
        assert again.returncode == 0, again.stderr
        assert sorted(f.file_name for f in job.gitlab.stored_files(PROJECT_ID)) == stored
        manifest = json.loads(again.stdout)
        assert {entry["status"] for entry in manifest["files"]} == {"present"}
        log = job.gitlab.request_log
        assert {entry.principal for entry in log if entry.path.startswith("/api/v4/")} == {"deploy"}
        assert not [entry for entry in log if entry.path.endswith("/packages")]  # no list API
        assert job.gitlab.tokens.deploy_token not in first.stdout + first.stderr + again.stderr
        assert "No Release page: GitLab does not accept a deploy token" in first.stderr


def test_an_epoch_version_is_refused_before_anything(poetry_cli: PoetryCli, tmp_path: Path) -> None:
    """`1!2.0` is PEP 440, but GitLab's generic registry refuses `!` in a version: the release
    stops at once (exit 2) instead of failing after signing, with nothing sent anywhere."""
    with pipeline(tmp_path, ref="v1!2.0") as job:
        env = {**job.env, "CI_COMMIT_TAG": "v1!2.0", "GITLAB_TOKEN": job.gitlab.tokens.personal}
        result = poetry_cli.run("gitlab-release", cwd=job.project, env=env)
        assert result.returncode == 2, result.stderr
        assert "CI_COMMIT_TAG 'v1!2.0' has a PEP 440 epoch (1!)" in result.stderr
        assert "Traceback" not in result.stderr
        assert job.gitlab.request_log == [] and job.gitlab.stored_files() == []
        assert not (job.project / "dist").exists() or not any((job.project / "dist").iterdir())
