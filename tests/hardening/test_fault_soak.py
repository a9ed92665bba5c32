"""A short fault soak in the suite (scripts/fault_soak.py runs the 50-release version).

5 releases with 20% of GitLab requests failing, 3 with 60%, and the Sigstore/generic-registry
scenarios; the script itself checks the registries after every run and exits 1 on any problem.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.figures import record

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_short_fault_soak(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "fault_soak.py"),
            "--runs",
            "5",
            "--stress-runs",
            "3",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["problems"] == []
    assert figures["runs"] == 5
    assert sum(figures["outcomes"].values()) == 5
    for phase in (figures, figures["stress"]):
        injected = sum(phase["faults"].values())
        retried = sum(phase["retries"].values())
        assert injected > 0
        # Every injected fault was retried, or ended a run with a clear error that was rerun.
        assert retried + sum(phase["failure_messages"].values()) >= injected
        assert phase["retry_after_ignored"] == 0
        assert phase["files_checked"] >= 6 * phase["runs"]
    # At 60% some runs fail outright; each failure was one clear line and a rerun completed.
    assert set(figures["stress"]["outcomes"]) <= {
        "completed",
        "completed after rerun",
        "failed with a clear error, then rerun",
    }
    scenarios = figures["scenarios"]
    assert "0 files published" in scenarios["Sigstore down while signing"]
    assert "rerun exit 0" in scenarios["Sigstore down while signing"]
    assert scenarios["Rekor answering 503 twice"].startswith("exit 0, 2 sign retries")
    assert "each file once" in scenarios["generic registry down after the packages went up"]
    record("soak.runs", figures["runs"] + figures["stress"]["runs"])
