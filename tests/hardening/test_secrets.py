"""No token in any output or file: scripts/secret_scan.py runs every command in every mode at
-vvv against the stand-ins (object-storage mode) and searches every token form everywhere."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.figures import record

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_no_token_anywhere_and_no_credential_to_object_storage(tmp_path: Path) -> None:
    out = tmp_path / "secrets.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "secret_scan.py"), "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["leaks"] == []
    assert figures["problems"] == []
    commands = {run["command"] for run in figures["runs"]}
    assert commands == {"gitlab-release", "gitlab-verify", "gitlab-pipelines"}
    assert {run["exit"] for run in figures["runs"]} >= {0, 1, 2}, "failure modes were exercised"
    assert figures["token_kinds"] == [
        "deploy",
        "job",
        "personal",
        "read_api",
        "sigstore identity",
        "wrong",
    ]
    assert figures["object_storage_requests"] > 0
    assert figures["object_storage_credentials"] == []
    record("secrets.commands", figures["commands"])
    record("secrets.comparisons", figures["comparisons"])


def test_the_scanner_finds_a_planted_token() -> None:
    """The scan is not vacuous: each form a token travels in is caught."""
    from scripts.secret_scan import Scan, Scanner

    scan = Scan()
    scanner = Scanner(None, scan, [])  # type: ignore[arg-type]
    token = "glpat-planted-secret-0001"
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6ZGVtbyJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
    scanner.add_token("personal", token)
    scanner.add_token("sigstore", jwt)
    basic = base64.b64encode(f"gitlab-ci-token:{token}".encode()).decode()
    scanner.check("clean", "nothing to see here ******** Secret('********')")
    assert scan.leaks == []
    scanner.check("raw", f"Authorization: Bearer {token}")
    scanner.check("basic", f"Authorization: Basic {basic}")
    scanner.check("jwt part", "payload eyJzdWIiOiJwcm9qZWN0X3BhdGg6ZGVtbyJ9 leaked")
    assert {leak.split(":")[0] for leak in scan.leaks} == {"raw", "basic", "jwt part"}
    assert "basic: personal basic(gitlab-ci-token)" in scan.leaks
