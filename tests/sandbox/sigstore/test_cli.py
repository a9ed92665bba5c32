"""Command lines: the real `sigstore` CLI against the stand-in, and `python -m sandbox sigstore`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.sigstore import SigstoreStandIn
from sandbox.sigstore.cli import READY_LINE

SIGSTORE = [sys.executable, "-m", "sigstore"]
REPO = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI", "GITLAB", "SIGSTORE"))}
    env.update(XDG_CACHE_HOME=str(tmp_path / "cache"), XDG_DATA_HOME=str(tmp_path / "data"))
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_sigstore_cli_sign_and_verify_identity(
    sigstore_standin_fresh: SigstoreStandIn, tmp_path: Path
) -> None:
    standin = sigstore_standin_fresh
    files = []
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(f"content of {name}")
        files.append(name)
    token = standin.mint_token()
    # Ambient GitLab detection: GITLAB_CI + SIGSTORE_ID_TOKEN, as in a job.
    env = _env(tmp_path, standin.ci_environment(token))
    trust = ["--trust-config", str(standin.trust_config_path)]
    signed = _run([*SIGSTORE, *trust, "sign", *files], env, tmp_path)
    assert signed.returncode == 0, signed.stderr
    assert standin.fulcio_requests == 1
    assert len(standin.rekor_entries) == 3
    assert all((tmp_path / f"{name}.sigstore.json").is_file() for name in files)

    identity = standin.expected_identity(token)
    verify = [*SIGSTORE, *trust, "verify", "identity", "--cert-oidc-issuer", standin.issuer]
    ok = _run([*verify, "--cert-identity", identity, *files], env, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.count("OK: ") == 3

    wrong = _run(
        [*verify, "--cert-identity", identity.replace("v1.0.0", "v9"), "a.txt"], env, tmp_path
    )
    assert wrong.returncode != 0
    assert "FAIL" in wrong.stderr

    (tmp_path / "b.txt").write_text("tampered")
    tampered = _run([*verify, "--cert-identity", identity, "b.txt"], env, tmp_path)
    assert tampered.returncode != 0


@pytest.fixture
def sandbox_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "sigstore",
            "--issuer",
            "http://127.0.0.1:18090",
            "--state-dir",
            str(tmp_path / "state"),
            "--ref",
            "main",
            "--ref-type",
            "branch",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    exported: dict[str, str] = {}
    for line in proc.stdout:
        if line.rstrip("\n") == READY_LINE:
            break
        assert line.startswith("export ")
        name, _, value = line[len("export ") :].rstrip("\n").partition("=")
        exported[name] = value.strip("'")
    try:
        yield proc, exported
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_python_m_sandbox_sigstore(
    sandbox_process: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    proc, exported = sandbox_process
    assert proc.poll() is None
    assert exported["GITLAB_CI"] == "true"
    assert exported["CI_SERVER_URL"] == "http://127.0.0.1:18090"
    assert exported["CI_COMMIT_BRANCH"] == "main" and "CI_COMMIT_TAG" not in exported
    assert exported["CI_PROJECT_PATH"] == "demo-group/hello-package"
    assert exported["CI_PROJECT_URL"] == "http://127.0.0.1:18090/demo-group/hello-package"
    identity = "https://127.0.0.1:18090/demo-group/hello-package//.gitlab-ci.yml@refs/heads/main"
    assert exported["SIGSTORE_IDENTITY"] == identity
    claims = SigstoreStandIn.token_claims(exported["SIGSTORE_ID_TOKEN"])
    assert claims["sha"] == exported["CI_COMMIT_SHA"] and claims["job_id"] == exported["CI_JOB_ID"]
    assert claims["iss"] == exported["SIGSTORE_OIDC_ISSUER"] == "http://127.0.0.1:18090"
    trust_config = exported["SIGSTORE_TRUST_CONFIG"]
    assert (
        json.loads(Path(trust_config).read_text())["signingConfig"]["caUrls"][0]["url"]
        == exported["SIGSTORE_STANDIN_URL"]
    )

    (tmp_path / "x.bin").write_bytes(b"x")
    env = _env(tmp_path, exported)
    signed = _run([*SIGSTORE, "--trust-config", trust_config, "sign", "x.bin"], env, tmp_path)
    assert signed.returncode == 0, signed.stderr
    verified = _run(
        [
            *SIGSTORE,
            "--trust-config",
            trust_config,
            "verify",
            "identity",
            "--cert-identity",
            identity,
            "--cert-oidc-issuer",
            exported["SIGSTORE_OIDC_ISSUER"],
            "x.bin",
        ],
        env,
        tmp_path,
    )
    assert verified.returncode == 0, verified.stderr
