"""Secret scan: every command, in every mode, at -vvv, against the stand-ins; no token anywhere.

Runs `gitlab-release` (configure, full release, rerun as JSON, dry run, a refused token),
`gitlab-verify` (registry mode with a personal and a deploy token, JSON and JUnit, local files,
a refused token) and `gitlab-pipelines` (table, JSON, OpenMetrics to a file, REST, a job token
it must refuse, watch mode stopped by Ctrl-C) in process through Poetry's Application, in a
fresh process whose Poetry config and cache are temporary.

Every token the run knows (personal, read_api, deploy, CI job token, the Sigstore identity token
and a wrong one) is searched for, raw and in the forms it travels in (HTTP Basic base64 with
each username, URL-encoded, each long JWT segment), in: stdout and stderr of every command
(error tracebacks at -vvv included), anything written to the process's own stdout/stderr, and
every file the commands wrote (dist/, release.json, poetry.toml, JUnit, OpenMetrics, JSON,
downloads). Poetry's auth.toml is excluded: storing the credential there is configure's job.

The GitLab stand-in runs in object-storage mode: package downloads are redirected to another
origin, which records the credential headers it receives; there must be none.

    python scripts/secret_scan.py [--json OUT]
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from scripts.fault_soak import (
    PROJECT_PATH,
    Figures,
    Harness,
    Result,
    _isolate,
)

WRONG_TOKEN = "glpat-WRONG0secret0token0xyz"
USERNAMES = ("gitlab-ci-token", "__token__", "deploy-token", "oauth2", "")


@dataclass
class Scan:
    runs: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    forms: int = 0
    texts: int = 0
    comparisons: int = 0
    bytes_scanned: int = 0
    leaks: list[str] = field(default_factory=list)
    object_storage_requests: int = 0
    object_storage_credentials: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "commands": len(self.runs),
            "runs": self.runs,
            "token_kinds": sorted(self.tokens),
            "token_forms": self.forms,
            "texts_scanned": self.texts,
            "bytes_scanned": self.bytes_scanned,
            "comparisons": self.comparisons,
            "leaks": self.leaks,
            "object_storage_requests": self.object_storage_requests,
            "object_storage_credentials": self.object_storage_credentials,
            "problems": self.problems,
        }


def _forms(name: str, token: str, extra_usernames: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    yield name, token
    if quote(token, safe="") != token:
        yield f"{name} url-encoded", quote(token, safe="")
    for username in (*USERNAMES, *extra_usernames):
        pair = base64.b64encode(f"{username}:{token}".encode()).decode()
        yield f"{name} basic({username or 'empty'})", pair
    if token.count(".") == 2:  # a JWT: no long segment may appear on its own either
        for index, segment in enumerate(token.split(".")):
            if len(segment) >= 16:
                yield f"{name} jwt segment {index}", segment


def _written_files(roots: list[Path], since: float) -> Iterator[Path]:
    for root in roots:
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            if ".venv" in path.parts or "__pycache__" in path.parts or not path.is_file():
                continue
            if path.name == "auth.toml":
                continue  # Poetry's credential store: configure writes the token there
            if path.stat().st_mtime >= since - 1:
                yield path


class Scanner:
    def __init__(self, harness: Harness, scan: Scan, roots: list[Path]) -> None:
        self.harness = harness
        self.scan = scan
        self.roots = roots
        self.forms: list[tuple[str, str]] = []

    def add_token(self, name: str, token: str, *usernames: str) -> None:
        self.scan.tokens[name] = token
        self.forms = [
            form
            for existing_name, existing in self.scan.tokens.items()
            for form in _forms(existing_name, existing, usernames)
        ]
        self.scan.forms = len(self.forms)

    def check(self, label: str, text: str) -> None:
        self.scan.texts += 1
        self.scan.bytes_scanned += len(text.encode("utf-8", "replace"))
        for form_name, value in self.forms:
            self.scan.comparisons += 1
            if value in text:
                self.scan.leaks.append(f"{label}: {form_name}")

    def run(
        self,
        label: str,
        command: str,
        *args: str,
        env: dict[str, str],
        expect: int | None = 0,
        interrupt_after: float | None = None,
    ) -> Result:
        started = time.time()
        if interrupt_after is not None:

            def interrupt(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt

            signal.signal(signal.SIGALRM, interrupt)
            signal.setitimer(signal.ITIMER_REAL, interrupt_after)
        try:
            result = self.harness.poetry(command, *args, "-vvv", env=env)
        finally:
            if interrupt_after is not None:
                signal.setitimer(signal.ITIMER_REAL, 0)
        self.scan.runs.append({"label": label, "command": command, "exit": result.code})
        if expect is not None and result.code != expect:
            tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1][:300]
            self.scan.problems.append(f"{label}: exit {result.code}, expected {expect}: {tail}")
        self.check(f"{label} stdout", result.stdout)
        self.check(f"{label} stderr", result.stderr)
        for path in _written_files(self.roots, started):
            self.check(f"{label} file {path}", path.read_text(encoding="utf-8", errors="replace"))
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    scan = Scan()
    with tempfile.TemporaryDirectory(prefix="secret-scan-") as scratch:
        root = Path(scratch)
        _isolate(root / "home")
        harness = Harness(root, 0.02, Figures(), object_storage=True)
        try:
            _scan_all(harness, scan, root)
        finally:
            harness.close()
    report = scan.as_json()
    print(json.dumps({key: value for key, value in report.items() if key != "runs"}, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    failures = scan.leaks + scan.problems + scan.object_storage_credentials
    if failures:
        print(f"FAIL: {len(failures)} problems", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        return 1
    print(
        f"OK: {len(scan.runs)} commands at -vvv, {scan.forms} token forms x {scan.texts} texts "
        f"({scan.comparisons} comparisons, {scan.bytes_scanned} bytes): no token found; "
        f"{scan.object_storage_requests} object-storage downloads carried no credential"
    )
    return 0


def _scan_all(harness: Harness, scan: Scan, root: Path) -> None:
    gitlab, project = harness.gitlab, harness.project
    downloads, outputs = root / "downloads", root / "outputs"
    outputs.mkdir()
    scanner = Scanner(harness, scan, [project, downloads, outputs, root / "home" / "config"])
    tokens = gitlab.tokens
    job_env = harness.environment()
    scanner.add_token("personal", tokens.personal)
    scanner.add_token("read_api", tokens.read_api)
    scanner.add_token("deploy", tokens.deploy_token, tokens.deploy_username)
    scanner.add_token("job", job_env["CI_JOB_TOKEN"])
    scanner.add_token("sigstore identity", job_env["SIGSTORE_ID_TOKEN"])
    scanner.add_token("wrong", WRONG_TOKEN)
    host = {"GITLAB_HOST": gitlab.url, "NO_COLOR": "1"}
    personal = {**host, "GITLAB_TOKEN": tokens.personal}

    # gitlab-release
    scanner.run(
        "release configure",
        "gitlab-release",
        "--steps",
        "configure",
        "--gitlab-project",
        PROJECT_PATH,
        env=personal,
    )
    scanner.run("release full", "gitlab-release", "--cosign-compat", env=job_env)
    scanner.run("release rerun json", "gitlab-release", "--format", "json", env=job_env)
    scanner.run("release dry run", "gitlab-release", "--dry-run", env=job_env)
    scanner.run(
        "release refused token",
        "gitlab-release",
        "--steps",
        "publish",
        env={**job_env, "CI_JOB_TOKEN": WRONG_TOKEN},
        expect=1,
    )

    # gitlab-verify
    requirement = "hello-package==1.2.3"
    scanner.run(
        "verify registry json junit",
        "gitlab-verify",
        requirement,
        "--gitlab-project",
        PROJECT_PATH,
        "--trust-config",
        str(harness.sigstore.trust_config_path),
        "--dest",
        str(downloads / "personal"),
        "--format",
        "json",
        "--junit",
        str(outputs / "verify-junit.xml"),
        env=personal,
    )
    scanner.run(
        "verify registry deploy token",
        "gitlab-verify",
        requirement,
        "--gitlab-project",
        PROJECT_PATH,
        "--trust-config",
        str(harness.sigstore.trust_config_path),
        "--dest",
        str(downloads / "deploy"),
        env={**host, "GITLAB_TOKEN": tokens.deploy_token},
    )
    scanner.run(
        "verify refused token",
        "gitlab-verify",
        requirement,
        "--gitlab-project",
        PROJECT_PATH,
        "--trust-config",
        str(harness.sigstore.trust_config_path),
        env={**host, "GITLAB_TOKEN": WRONG_TOKEN},
        expect=1,
    )
    wheel = next((project / "dist").glob("*.whl"))
    scanner.run(
        "verify local files",
        "gitlab-verify",
        str(wheel),
        "--gitlab-project",
        PROJECT_PATH,
        "--host",
        gitlab.url,
        "--ref",
        "v1.2.3",
        "--trust-config",
        str(harness.sigstore.trust_config_path),
        env=personal,
    )

    # gitlab-pipelines: exit 1 gates a CI job on demo-group's failed pipeline (web-app)
    group = ["--group", "demo-group"]
    scanner.run("pipelines table", "gitlab-pipelines", *group, env=personal, expect=1)
    scanner.run(
        "pipelines json", "gitlab-pipelines", *group, "--format", "json", env=personal, expect=1
    )
    scanner.run(
        "pipelines openmetrics file",
        "gitlab-pipelines",
        *group,
        "--format",
        "openmetrics",
        "--output",
        str(outputs / "pipelines.prom"),
        env=personal,
        expect=1,
    )
    scanner.run(
        "pipelines rest logs",
        "gitlab-pipelines",
        *group,
        "--api",
        "rest",
        "--logs",
        "5",
        env={**host, "GITLAB_TOKEN": tokens.read_api},
        expect=1,
    )
    scanner.run("pipelines job token", "gitlab-pipelines", *group, env=job_env, expect=2)
    scanner.run(
        "pipelines watch",
        "gitlab-pipelines",
        *group,
        "--watch",
        "--interval",
        "2",
        "--output",
        str(outputs / "watch.txt"),
        env=personal,
        expect=0,
        interrupt_after=3.0,
    )

    storage = gitlab.object_storage_log
    scan.object_storage_requests = len(storage)
    scan.object_storage_credentials = [
        f"object storage {item.method} {item.path} received {sorted(item.credential_headers)}"
        for item in storage
        if item.credential_headers
    ]
    if not storage:
        scan.problems.append("no download went through object storage: the redirect is untested")


if __name__ == "__main__":
    raise SystemExit(main())
