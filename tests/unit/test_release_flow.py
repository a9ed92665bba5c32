"""The release flow itself, without cleo: run_release over the Sigstore and GitLab stand-ins,
heard through a recording Reporter (the interface the command implements)."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from poetry_gitlab_release.config.settings import Settings, resolve_settings
from poetry_gitlab_release.errors import ConfigError, UsageError, VerificationError
from poetry_gitlab_release.files import sha256_file
from poetry_gitlab_release.gitlab.uploads import Progress
from poetry_gitlab_release.release.artifacts import Artifact
from poetry_gitlab_release.release.build import BuildResult, ReleaseVersion
from poetry_gitlab_release.release.flow import ReleaseRequest, Reporter, run_release
from poetry_gitlab_release.release.publish import FileAction
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn

PROJECT = "demo-group/hello-package"
VERSION = ReleaseVersion("1.0.0", "CI_COMMIT_TAG")


class RecordingReporter:
    """Keeps what the flow reports, in order; `on_step` lets a test act at a given line."""

    def __init__(self, on_step: Callable[[str], None] | None = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self.files: list[FileAction] = []
        self._on_step = on_step

    def step(self, text: str) -> None:
        self.lines.append(("step", text))
        if self._on_step is not None:
            self._on_step(text)

    def detail(self, text: str) -> None:
        self.lines.append(("detail", text))

    def retry(self, what: str, delay: float) -> None:
        self.lines.append(("retry", what))

    def rate_limit(self, message: str, delay: float) -> None:
        self.lines.append(("rate-limit", message))

    def file_done(self, action: FileAction) -> None:
        self.files.append(action)

    def warning(self, text: str) -> None:
        self.lines.append(("warning", text))

    def progress(self, label: str, size: int) -> Progress | None:
        return None

    def steps(self) -> list[str]:
        return [text for kind, text in self.lines if kind == "step"]


def _reporter_is_a_reporter(reporter: RecordingReporter) -> Reporter:
    return reporter  # mypy checks that the recording reporter implements the Protocol


@pytest.fixture(scope="module")
def stand_ins(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GitLabStandIn, SigstoreStandIn]]:
    cache = tmp_path_factory.mktemp("xdg")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(cache / "cache"))
        patch.setenv("XDG_DATA_HOME", str(cache / "data"))
        with GitLabStandIn(Scenario.default()) as gitlab:
            state = tmp_path_factory.mktemp("sigstore")
            with SigstoreStandIn(state_dir=state, issuer=gitlab.url) as sigstore:
                yield gitlab, sigstore


def make_dist(directory: Path, version: str = "1.0.0") -> list[Path]:
    """A real (tiny) sdist: the PyPI upload reads its PKG-INFO."""
    directory.mkdir(parents=True, exist_ok=True)
    sdist = directory / f"demo_pkg-{version}.tar.gz"
    metadata = f"Metadata-Version: 2.4\nName: demo-pkg\nVersion: {version}\nSummary: demo\n"
    with tarfile.open(sdist, "w:gz") as archive:
        data = metadata.encode()
        info = tarfile.TarInfo(f"demo_pkg-{version}/PKG-INFO")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return [sdist]


def settings_for(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], *, tag: str = "v1.0.0"
) -> Settings:
    gitlab, sigstore = stand_ins
    token = sigstore.mint_token(project_path=PROJECT, ref="v1.0.0", server_url=gitlab.url)
    return resolve_settings(
        {
            "host": gitlab.url,
            "token": gitlab.tokens.personal,
            "project": PROJECT,
            "identity-token": token,
            "trust-config": str(sigstore.trust_config_path),
            "allow-insecure-http": True,
        },
        {
            "GITLAB_CI": "true",
            "CI_SERVER_URL": gitlab.url,
            "CI_PROJECT_PATH": PROJECT,
            "CI_COMMIT_TAG": tag,
            "CI_COMMIT_REF_NAME": tag,
            "CI_COMMIT_SHA": "a" * 40,
        },
    )


def request_for(dist: Path, *steps: str, dry_run: bool = False) -> ReleaseRequest:
    return ReleaseRequest(
        name="demo-pkg", version=VERSION, dist_dir=dist, steps=steps, dry_run=dry_run
    )


def test_sign_verify_publish_reports_each_step_in_order_and_writes_the_manifest(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    make_dist(dist)
    reporter = RecordingReporter()
    outcome = run_release(
        settings_for(stand_ins),
        request_for(dist, "sign", "verify", "publish-signatures", "publish-packages"),
        _reporter_is_a_reporter(reporter),
    )
    steps = reporter.steps()
    assert steps[0] == "Signing 1 artifacts with one Sigstore certificate"
    assert steps[1].startswith("  signed demo_pkg-1.0.0.tar.gz  rekor log index ")
    assert steps[2].startswith("Verifying against https://")
    assert steps[3] == "  verified demo_pkg-1.0.0.tar.gz + PEP 740 attestation"
    assert steps[4] == (
        "Publishing: signatures to the generic registry, then packages to GitLab's PyPI registry"
    )
    assert any(
        kind == "detail" and text.startswith("  signer https://") for kind, text in reporter.lines
    )
    published = [(action.registry, action.file_name, action.status) for action in reporter.files]
    assert ("pypi", "demo_pkg-1.0.0.tar.gz", "uploaded") in published
    assert ("generic", "demo_pkg-1.0.0.tar.gz.sigstore.json", "uploaded") in published
    assert outcome.publish is not None and not outcome.publish.dry_run
    document = json.loads(outcome.manifest.path.read_text())
    assert document["steps"] == ["sign", "verify", "publish-signatures", "publish-packages"]
    assert document["files"][0]["sha256"] == sha256_file(dist / "demo_pkg-1.0.0.tar.gz").sha256
    assert outcome.expected is not None and outcome.expected.ref == "refs/tags/v1.0.0"
    assert outcome.page is not None and outcome.page.created
    assert "demo_pkg-1.0.0.tar.gz" in {link["name"] for link in outcome.page.links}

    # Again: everything is already there with the same content, nothing is uploaded twice.
    again = RecordingReporter()
    run_release(
        settings_for(stand_ins),
        request_for(dist, "verify", "publish-signatures", "publish-packages"),
        again,
    )
    assert {action.status for action in again.files} == {"present"}


def test_the_build_step_runs_the_given_builder_and_reports_what_it_built(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"

    def build() -> BuildResult:
        paths = make_dist(dist)
        artifacts = tuple(
            Artifact(path, "sdist", sha256_file(path).sha256, path.stat().st_size) for path in paths
        )
        return BuildResult(
            "demo-pkg", VERSION, artifacts, venv=tmp_path / "venv", stamped_urls={"Source": "x"}
        )

    reporter = RecordingReporter()
    outcome = run_release(
        settings_for(stand_ins), request_for(dist, "build"), reporter, build=build
    )
    assert reporter.lines[:2] == [
        ("step", "Building <c1>demo-pkg</c1> <c2>1.0.0</c2> (CI_COMMIT_TAG)"),
        (
            "step",
            f"  built  demo_pkg-1.0.0.tar.gz  sha256 {sha256_file(dist / 'demo_pkg-1.0.0.tar.gz').sha256}",
        ),
    ]
    assert ("detail", f"  build environment: {tmp_path / 'venv'}") in reporter.lines
    assert outcome.expected is None and outcome.publish is None
    assert json.loads(outcome.manifest.path.read_text())["steps"] == ["build"]


def test_nothing_to_release_is_a_usage_error(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"no sdist or wheel of demo-pkg 1\.0\.0"):
        run_release(settings_for(stand_ins), request_for(tmp_path, "sign"), RecordingReporter())
    with pytest.raises(UsageError, match="build step needs"):
        run_release(settings_for(stand_ins), request_for(tmp_path, "build"), RecordingReporter())


def test_a_signer_from_another_ref_stops_before_anything_is_published(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    make_dist(dist)
    run_release(settings_for(stand_ins), request_for(dist, "sign"), RecordingReporter())
    reporter = RecordingReporter()
    with pytest.raises(VerificationError, match="does not match the expected signer"):
        run_release(
            settings_for(stand_ins, tag="v2.0.0"),
            request_for(dist, "verify", "publish-signatures", "publish-packages"),
            reporter,
        )
    assert reporter.files == []
    assert not any(text.startswith("Publishing") for text in reporter.steps())
    # The manifest is still the sign run's: a failed run writes none.
    assert json.loads((dist / "release.json").read_text())["steps"] == ["sign"]


def test_an_artifact_changed_during_the_release_writes_no_manifest(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    (sdist,) = make_dist(dist)

    def tamper(text: str) -> None:
        if text.startswith("  signed "):
            sdist.write_bytes(b"other bytes")

    with pytest.raises(VerificationError, match="changed during the release"):
        run_release(settings_for(stand_ins), request_for(dist, "sign"), RecordingReporter(tamper))
    assert not (dist / "release.json").exists()


def test_publishing_without_a_token_is_refused_before_any_request(
    stand_ins: tuple[GitLabStandIn, SigstoreStandIn], tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    make_dist(dist)
    settings = settings_for(stand_ins)
    run_release(settings, request_for(dist, "sign"), RecordingReporter())
    without_token = dataclasses.replace(settings, credential=None)
    reporter = RecordingReporter()
    with pytest.raises(ConfigError, match="token"):
        run_release(without_token, request_for(dist, "publish-packages"), reporter)
    assert reporter.files == []
    assert not any(text.startswith("Publishing") for text in reporter.steps())
