"""`python -m sandbox`: both stand-ins in one process, consistent with each other."""

from __future__ import annotations

import base64
import json
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from sandbox.combined import READY_LINE

ROOT = Path(__file__).resolve().parents[2]


def read_environment(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    environment: dict[str, str] = {}
    for line in process.stdout:
        if line.rstrip("\n") == READY_LINE:
            return environment
        if line.startswith("export "):
            name, _, value = line[len("export ") :].rstrip("\n").partition("=")
            environment[name] = shlex.split(value)[0] if value else ""
    raise AssertionError("the sandbox exited before it was ready")


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def test_python_m_sandbox_prints_a_consistent_release_job(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        env = read_environment(process)
        claims = claims_of(env["SIGSTORE_ID_TOKEN"])
        # The identity token was issued by the GitLab stand-in, for a project that exists there.
        assert claims["iss"] == env["CI_SERVER_URL"]
        assert claims["project_path"] == env["CI_PROJECT_PATH"] == "demo-group/hello-package"
        assert str(claims["project_id"]) == env["CI_PROJECT_ID"]
        assert claims["ref"] == env["CI_COMMIT_TAG"]
        project = httpx.get(
            f"{env['CI_API_V4_URL']}/projects/{env['CI_PROJECT_ID']}",
            headers={"PRIVATE-TOKEN": env["GITLAB_TOKEN"]},
        )
        assert project.status_code == 200
        assert project.json()["path_with_namespace"] == env["CI_PROJECT_PATH"]
        # The job token reaches its own project's registry (Basic, as pip and twine send it).
        simple = httpx.get(
            f"{env['CI_API_V4_URL']}/projects/{env['CI_PROJECT_ID']}/packages/pypi/simple",
            auth=("gitlab-ci-token", env["CI_JOB_TOKEN"]),
        )
        assert simple.status_code in {200, 404}
        trust = json.loads(Path(env["GITLAB_RELEASE_TRUST_CONFIG"]).read_text())
        assert trust["signingConfig"]["caUrls"][0]["url"].startswith("http://127.0.0.1:")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    assert process.returncode == 0
