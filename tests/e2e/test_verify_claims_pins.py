"""Immutable ids and pinned signers, through the real `poetry gitlab-verify`.

One story on one pair of stand-ins: a consumer verifies hello-package 0.1.0 (pinned on first
use); the project is renamed and another project takes its path and signs 0.2.0 with the very
same identity (SAN). The pin's project id refuses it; so does an explicit --project-id; an
explicit --accept-signer-change takes it and re-pins.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from poetry_gitlab_release.verify.pins import PinStore
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn
from tests.e2e.verify_support import (
    NAME,
    PROJECT_PATH,
    make_sdist,
    make_wheel,
    publish,
    rename_and_reregister,
    sign_release,
)
from tests.fixtures.poetry import PoetryCli, make_project

pytestmark = pytest.mark.e2e


@dataclass
class World:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    cli: PoetryCli
    consumer: Path  # a Poetry project: the pins live beside its (future) poetry.lock

    def verify(
        self, version: str, *args: str, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.cli.run(
            "gitlab-verify",
            f"{NAME}=={version}",
            "--gitlab-project",
            PROJECT_PATH,
            "--trust-config",
            str(self.sigstore.trust_config_path),
            *args,
            cwd=cwd or self.consumer,
            env={"GITLAB_HOST": self.gitlab.url, "GITLAB_TOKEN": self.gitlab.tokens.read_api},
        )


def _release(world: World, version: str, directory: Path, project_id: int | None = None) -> None:
    directory.mkdir()
    files = [make_wheel(directory, version=version), make_sdist(directory, version=version)]
    signed = sign_release(
        world.sigstore, world.gitlab, files, ref=f"v{version}", project_id=project_id
    )
    publish(world.gitlab, signed, project=project_id or PROJECT_PATH, version=version)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, module_poetry_cli: PoetryCli
) -> Iterator[World]:
    home = tmp_path_factory.mktemp("claims-pins")
    with (
        GitLabStandIn(Scenario.default()) as gitlab,
        SigstoreStandIn(issuer=gitlab.url, state_dir=home / "sigstore") as sigstore,
    ):
        yield World(gitlab, sigstore, module_poetry_cli, make_project(home, "consumer"))


def test_renamed_project_and_reused_path_are_refused_until_accepted(world: World) -> None:
    home = world.consumer.parent
    original = world.gitlab.project_id(PROJECT_PATH)
    _release(world, "0.1.0", home / "v1")

    first = world.verify("0.1.0")
    assert first.returncode == 0, first.stderr
    assert "pinned signer" in first.stdout and ": pinned" in first.stdout
    assert f"project id {original}" in first.stdout  # the id GitLab gave, checked
    pins_path = world.consumer / "gitlab-verify.lock"
    pinned = PinStore.load(pins_path).get(NAME)
    assert pinned is not None and pinned.signers[0].project_id == str(original)
    assert pinned.signers[0].namespace_id == str(
        world.gitlab.scenario.projects[original].namespace_id
    )
    assert world.verify("0.1.0").returncode == 0  # the same signer again: matches pin

    # The project moves away; a newcomer takes the path and signs a release with the very
    # same identity https://HOST/demo-group/hello-package//.gitlab-ci.yml@refs/tags/v0.2.0.
    newcomer = rename_and_reregister(world.gitlab, PROJECT_PATH, "demo-group/hello-package-old")
    _release(world, "0.2.0", home / "v2", project_id=newcomer)

    pinned_run = world.verify("0.2.0")
    assert pinned_run.returncode == 1, pinned_run.stdout
    expected = f"project id is {newcomer}, expected {original} (pinned in gitlab-verify.lock)"
    assert expected in pinned_run.stderr
    assert "Traceback" not in pinned_run.stderr
    assert PinStore.load(pins_path).get(NAME) == pinned  # a refused signer is never pinned

    # Outside a Poetry project (no pins) an explicit --project-id says the same
    elsewhere = home / "elsewhere"
    elsewhere.mkdir()
    explicit = world.verify("0.2.0", "--project-id", str(original), cwd=elsewhere)
    assert explicit.returncode == 1
    assert f"project id is {newcomer}, expected {original} (--project-id)" in explicit.stderr
    assert not (elsewhere / "gitlab-verify.lock").exists()

    accepted = world.verify("0.2.0", "--accept-signer-change")
    assert accepted.returncode == 0, accepted.stderr
    assert "change accepted" in accepted.stdout
    repinned = PinStore.load(pins_path).get(NAME)
    assert repinned is not None and repinned.signers[0].project_id == str(newcomer)
    assert world.verify("0.2.0").returncode == 0


def test_claim_policy_options(world: World, tmp_path: Path) -> None:
    version = "0.3.0"
    _release(world, version, tmp_path / "v3", project_id=world.gitlab.project_id(PROJECT_PATH))
    ok = world.verify(
        version,
        "--pins",
        str(tmp_path / "pins.lock"),
        "--runner-environment",
        "gitlab-hosted",
        "--pipeline-source",
        "web,push",
        "--format",
        "json",
    )
    assert ok.returncode == 0, ok.stderr
    document = json.loads(ok.stdout)
    assert "runner gitlab-hosted, pipeline source web|push" in document["expected"]
    claims = document["files"][0]["claims"]
    assert claims["project_id"] == str(world.gitlab.project_id(PROJECT_PATH))
    assert claims["runner_environment"] == "gitlab-hosted" and claims["pipeline_source"] == "push"
    refused = world.verify(
        version,
        "--pins",
        str(tmp_path / "pins.lock"),
        "--pipeline-source",
        "schedule",
        "--environment",
        "production",
    )
    assert refused.returncode == 1
    assert "pipeline source is push, expected schedule" in refused.stderr
    assert "environment is missing, expected production" in refused.stderr
    bad = world.verify(version, "--runner-environment", "cloud")
    assert bad.returncode == 2
    assert "expected one of gitlab-hosted, self-hosted" in bad.stderr
