"""Fidelity against real clients: twine, poetry, pip and python-gitlab talk to the stand-in."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import gitlab
import pytest

from sandbox.gitlab import GitLabStandIn
from tests.sandbox.gitlab.dists import make_sdist, make_wheel

BIN = Path(sys.executable).parent
HELLO = 100  # demo-group/hello-package


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWINE_", "POETRY_", "PIP_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", NO_COLOR="1")
    env.update(COLUMNS="200")
    env.update(extra)
    return env


def _twine(
    standin: GitLabStandIn, user: str, password: str, *files: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(BIN / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--verbose",
            "--repository-url",
            f"{standin.api_url}/projects/{HELLO}/packages/pypi",
            *map(str, files),
        ],
        check=False,
        env=_env(TWINE_USERNAME=user, TWINE_PASSWORD=password),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_twine_upload_then_duplicate_fails_as_on_gitlab(
    gitlab_standin: GitLabStandIn, tmp_path: Path
) -> None:
    wheel, sdist = make_wheel(tmp_path), make_sdist(tmp_path)
    first = _twine(gitlab_standin, "anything", gitlab_standin.tokens.personal, wheel, sdist)
    assert first.returncode == 0, first.stdout + first.stderr
    stored = gitlab_standin.stored_files(HELLO, package_type="pypi")
    assert {(f.name, f.version, f.file_name) for f in stored} == {
        ("hello-package", "0.1.0", wheel.name),
        ("hello-package", "0.1.0", sdist.name),
    }
    assert {f.sha256 for f in stored} == {
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (wheel, sdist)
    }
    second = _twine(gitlab_standin, "anything", gitlab_standin.tokens.personal, wheel)
    assert second.returncode != 0
    assert "File name has already been taken" in " ".join(second.stdout.split())
    assert len(gitlab_standin.stored_files(HELLO)) == 2
    statuses = [r.status for r in gitlab_standin.request_log if r.method == "POST"]
    assert statuses == [201, 201, 400]


def test_twine_with_job_token_needs_gitlab_ci_token_username(
    gitlab_standin: GitLabStandIn, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path)
    job = gitlab_standin.job_token(HELLO)
    refused = _twine(gitlab_standin, "ci-bot", job, wheel)
    assert refused.returncode != 0
    assert "401" in refused.stdout + refused.stderr
    assert gitlab_standin.stored_files() == []
    accepted = _twine(gitlab_standin, "gitlab-ci-token", job, wheel)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert [f.file_name for f in gitlab_standin.stored_files()] == [wheel.name]


def test_poetry_publish_and_skip_existing(gitlab_standin: GitLabStandIn, tmp_path: Path) -> None:
    project = tmp_path / "hello"
    (project / "dist").mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[project]\nname = "hello-package"\nversion = "0.1.0"\n'
        'description = "x"\nauthors = [{name = "a", email = "a@example.com"}]\n'
    )
    make_wheel(project / "dist")
    make_sdist(project / "dist")
    env = _env(
        POETRY_REPOSITORIES_GITLAB_URL=f"{gitlab_standin.api_url}/projects/{HELLO}/packages/pypi",
        POETRY_HTTP_BASIC_GITLAB_USERNAME="gitlab-ci-token",
        POETRY_HTTP_BASIC_GITLAB_PASSWORD=gitlab_standin.job_token(HELLO),
        POETRY_CACHE_DIR=str(tmp_path / "cache"),
        POETRY_CONFIG_DIR=str(tmp_path / "config"),
    )
    command = [str(BIN / "poetry"), "publish", "--no-interaction", "--repository", "gitlab"]
    first = subprocess.run(
        command, check=False, cwd=project, env=env, capture_output=True, text=True, timeout=90
    )
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(gitlab_standin.stored_files(HELLO, package_type="pypi")) == 2
    again = subprocess.run(
        command, check=False, cwd=project, env=env, capture_output=True, text=True, timeout=90
    )
    assert again.returncode != 0
    assert "File name has already been taken" in again.stdout + again.stderr
    skip = subprocess.run(
        [*command, "--skip-existing"],
        cwd=project,
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert skip.returncode == 0, skip.stdout + skip.stderr
    assert "File exists. Skipping" in skip.stdout + skip.stderr
    assert len(gitlab_standin.stored_files(HELLO)) == 2


def test_pip_download_and_install_get_identical_bytes(
    gitlab_standin: GitLabStandIn, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path, version="1.2.3")
    uploaded = _twine(gitlab_standin, "x", gitlab_standin.tokens.personal, wheel)
    assert uploaded.returncode == 0, uploaded.stderr
    host = gitlab_standin.url.removeprefix("http://")
    token = gitlab_standin.tokens.read_api
    index = f"http://reader:{token}@{host}/api/v4/projects/{HELLO}/packages/pypi/simple"
    out = tmp_path / "downloaded"
    pip = [sys.executable, "-m", "pip", "--no-cache-dir", "--no-input"]
    download = subprocess.run(
        [
            *pip,
            "download",
            "--no-deps",
            "--index-url",
            index,
            "-d",
            str(out),
            "Hello_Package==1.2.3",
        ],
        check=False,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert download.returncode == 0, download.stdout + download.stderr
    assert (out / wheel.name).read_bytes() == wheel.read_bytes()
    target = tmp_path / "target"
    install = subprocess.run(
        [
            *pip,
            "install",
            "--no-deps",
            "--target",
            str(target),
            "--index-url",
            index,
            "hello.package",
        ],
        check=False,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "hello_package" / "__init__.py").read_text() == '__version__ = "1.2.3"\n'
    anonymous = subprocess.run(
        [
            *pip,
            "download",
            "--no-deps",
            "--index-url",
            f"{gitlab_standin.api_url}/projects/{HELLO}/packages/pypi/simple",
            "-d",
            str(tmp_path / "anon"),
            "hello-package",
        ],
        check=False,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert anonymous.returncode != 0  # private project: 401 without credentials


def test_python_gitlab_lists_group_projects_and_pipelines(
    gitlab_standin_large: GitLabStandIn,
) -> None:
    standin = gitlab_standin_large
    client = gitlab.Gitlab(standin.url, private_token=standin.tokens.read_api)
    group = client.groups.get("acme")
    projects = group.projects.list(
        include_subgroups=True,
        with_shared=False,
        archived=False,
        simple=True,
        get_all=True,
        per_page=100,
        order_by="path",
        sort="asc",
    )
    expected = standin.scenario.expected_group_projects("acme", include_archived=False)
    assert sorted(p.path_with_namespace for p in projects) == sorted(t.full_path for t in expected)
    assert [p.path_with_namespace for p in projects] == sorted(
        p.path_with_namespace for p in projects
    )
    checked = 0
    for truth in expected[:40]:
        project = client.projects.get(truth.id, lazy=True)
        pipelines = project.pipelines.list(get_all=True)
        assert [p.id for p in pipelines] == [
            p.id for p in standin.scenario.project_pipelines(truth.id)
        ]
        if truth.latest_pipeline is None:
            with pytest.raises(gitlab.GitlabGetError) as error:
                project.pipelines.get("latest")
            assert error.value.response_code == 403
            continue
        latest = project.pipelines.get("latest")
        assert (latest.id, latest.status, latest.sha) == (
            truth.latest_pipeline.id,
            truth.latest_pipeline.status,
            truth.latest_pipeline.sha,
        )
        assert latest.duration == truth.latest_pipeline.duration
        jobs = latest.jobs.list(get_all=True)
        failed = [j.name for j in jobs if j.status == "failed"]
        assert sorted(failed) == sorted(truth.latest_pipeline.failed_jobs)
        checked += 1
    assert checked > 10
