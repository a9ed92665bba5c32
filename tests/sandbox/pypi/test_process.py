"""`python -m sandbox pypi` and `python -m sandbox --gitlab-com`: the job's PYPI_ID_TOKEN
is exchanged at the PyPI stand-in they start."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from sandbox.pypi.cli import READY_LINE
from tests.sandbox.test_combined import ROOT, claims_of, read_environment


def _started(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )


def _exchange(upload_url: str, id_token: str) -> httpx.Response:
    parts = urlsplit(upload_url)
    return httpx.post(
        f"{parts.scheme}://{parts.netloc}/_/oidc/mint-token", json={"token": id_token}
    )


def _read(process: subprocess.Popen[str], ready: str) -> dict[str, str]:
    assert process.stdout is not None
    environment: dict[str, str] = {}
    for line in process.stdout:
        if line.rstrip("\n") == ready:
            return environment
        if line.startswith("export "):
            name, _, value = line[len("export ") :].rstrip("\n").partition("=")
            environment[name] = value.strip("'")
    raise AssertionError("the sandbox exited before it was ready")


@pytest.mark.parametrize("command", [["pypi"], ["--gitlab-com"]])
def test_the_printed_pypi_id_token_exchanges(command: list[str], tmp_path: Path) -> None:
    process = _started([*command, "--state-dir", str(tmp_path)])
    try:
        if command == ["pypi"]:
            env = _read(process, READY_LINE)
        else:
            env = read_environment(process)
            assert env["GITLAB_RELEASE_ISSUER"] == "https://gitlab.com"
            assert env["GITLAB_RELEASE_IDENTITY"].startswith(
                "https://gitlab.com/demo-group/hello-package//.gitlab-ci.yml@refs/tags/"
            )
        claims = claims_of(env["PYPI_ID_TOKEN"])
        assert (claims["iss"], claims["aud"]) == ("https://gitlab.com", "pypi")
        answer = _exchange(env["GITLAB_RELEASE_PYPI_URL"], env["PYPI_ID_TOKEN"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["token"].startswith("pypi-")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
