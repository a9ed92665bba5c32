"""Fault soak: the full `poetry gitlab-release` many times against a failing GitLab stand-in.

Each run releases examples/hello-package (build, sign, verify, publish) from a tag pipeline's
environment, in process through Poetry's own Application with the plugin, against one GitLab
stand-in whose registries are emptied before the run and which fails a seeded share of
requests (502, 503, 429 with Retry-After, connection reset before or in the middle of a request
body). A run that fails must fail with exit 1 and one `Error:` line; it is then rerun (faults
still on) until it completes. Afterwards the registries must hold every file of the release
exactly once, with the sha256 of the file in dist/, and nothing else.

A second, shorter phase at a much higher rate (--stress-rate, default 60%) makes runs fail
outright, to show that every failure is one clear error and that reruns, with the faults still
on, complete the release without duplicates or orphans.

Then three scenarios: Sigstore down while signing (clear error, nothing published, a rerun
completes), Rekor answering 5xx (retried, completes), and the generic registry down after the
packages went up (clear error, a rerun completes, each file once).

Backoff delays are recorded at their full value and slept scaled by --time-scale (default 0.02),
so that 50 runs take minutes, not an hour. Retry-After is checked at its full value.

    python scripts/fault_soak.py [--runs 50] [--rate 0.2] [--first-seed 1] [--json OUT]

Exit status 0 when every check held, 1 otherwise. Prints the figures; --json writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hello-package"
PROJECT_ID = 100
PROJECT_PATH = "demo-group/hello-package"
TAG = "v1.2.3"
VERSION = "1.2.3"
SIGNATURE_SUFFIXES = (".sigstore.json", ".publish.attestation")
MAX_RERUNS = 8


@dataclass
class Figures:
    runs: int = 0
    seeds: list[int] = field(default_factory=list)
    rate: float = 0.0
    faults: Counter[str] = field(default_factory=Counter)
    faults_on_uploads: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    retry_after_honoured: int = 0
    retry_after_ignored: int = 0
    sign_retries: int = 0
    scenario_retries: Counter[str] = field(default_factory=Counter)
    stress: dict[str, Any] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    reruns: int = 0
    failure_messages: Counter[str] = field(default_factory=Counter)
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)
    scenarios: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "seeds": self.seeds,
            "rate": self.rate,
            "faults": dict(sorted(self.faults.items())),
            "faults_on_uploads": self.faults_on_uploads,
            "retries": dict(sorted(self.retries.items())),
            "retry_after_honoured": self.retry_after_honoured,
            "retry_after_ignored": self.retry_after_ignored,
            "sign_retries": self.sign_retries,
            "outcomes": dict(sorted(self.outcomes.items())),
            "reruns": self.reruns,
            "failure_messages": dict(self.failure_messages.most_common()),
            "files_checked": self.files_checked,
            "problems": self.problems,
            "scenarios": self.scenarios,
            "scenario_retries": dict(sorted(self.scenario_retries.items())),
            "stress": self.stress,
            "seconds": round(self.seconds, 1),
        }


def _isolate(home: Path) -> None:
    """Poetry reads its config and cache directories when first imported: set them first."""
    for key in list(os.environ):
        if key.startswith(("CI_", "GITLAB_", "POETRY_", "SIGSTORE_", "VIRTUAL_ENV", "PIP_")):
            del os.environ[key]
    os.environ.update(
        {
            "POETRY_CONFIG_DIR": str(home / "config"),
            "POETRY_CACHE_DIR": str(home / "cache"),
            "POETRY_KEYRING_ENABLED": "false",
            "XDG_CACHE_HOME": str(home / "xdg-cache"),
            "XDG_DATA_HOME": str(home / "xdg-data"),
            "NO_COLOR": "1",
        }
    )


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


class Harness:
    """The stand-ins, the project, and an in-process `poetry gitlab-release`."""

    def __init__(
        self, root: Path, time_scale: float, figures: Figures, *, object_storage: bool = False
    ) -> None:
        from sandbox.gitlab import GitLabStandIn
        from sandbox.sigstore import SigstoreStandIn

        self.root = root
        self.figures = figures
        self.time_scale = time_scale
        self.stack = contextlib.ExitStack()
        self.gitlab = self.stack.enter_context(GitLabStandIn(object_storage=object_storage))
        self.sigstore = self.stack.enter_context(
            SigstoreStandIn(issuer=self.gitlab.url, state_dir=root / "sigstore")
        )
        self.project = root / "hello-package"
        shutil.copytree(EXAMPLE, self.project, ignore=shutil.ignore_patterns("dist", ".venv"))
        self._instrument()

    def close(self) -> None:
        self.stack.close()

    def _instrument(self) -> None:
        """Count retries and compress sleeps: the client's and the sign step's."""
        from poetry_gitlab_release.gitlab import client as client_module
        from poetry_gitlab_release.release import sign as sign_module

        scale = self.time_scale
        original_wait = client_module.GitLabClient._wait

        def wait(client: Any, attempt: int, retry_after: float | None, what: str) -> None:
            figures = self.figures  # the current phase's
            kind = what.split(" on ")[0]
            figures.retries[kind] += 1
            if kind == "HTTP 429":
                delay = client.retry.delay(attempt, retry_after)
                fault_plan = self.gitlab.app.faults
                wanted = float(fault_plan.retry_after) if fault_plan else None
                if retry_after is not None and delay == wanted:
                    figures.retry_after_honoured += 1
                else:
                    figures.retry_after_ignored += 1
            original_wait(client, attempt, retry_after, what)

        client_module.GitLabClient._wait = wait  # type: ignore[method-assign, assignment]
        defaults = client_module.GitLabClient.__init__.__kwdefaults__
        assert defaults is not None
        defaults["sleep"] = lambda seconds: time.sleep(seconds * scale)

        sign_defaults = sign_module.sign_artifacts.__kwdefaults__
        assert sign_defaults is not None

        def sign_sleep(seconds: float) -> None:
            self.figures.sign_retries += 1
            time.sleep(seconds * scale)

        sign_defaults["sleep"] = sign_sleep

    def environment(self) -> dict[str, str]:
        project = self.gitlab.scenario.projects[PROJECT_ID]
        token = self.sigstore.mint_token(
            project_path=PROJECT_PATH,
            project_id=PROJECT_ID,
            namespace_id=project.namespace_id,  # GitLab's ids, as a real job's token has them
            ref=TAG,
            ref_type="tag",
            server_url=self.gitlab.url,
        )
        env = self.gitlab.ci_variables(PROJECT_ID, tag=TAG)
        env.update(self.sigstore.ci_environment(token))
        env.update(
            {
                "CI_SERVER_URL": self.gitlab.url,
                "CI_API_V4_URL": self.gitlab.api_url,
                "CI_PROJECT_ID": str(PROJECT_ID),
                "GITLAB_RELEASE_TRUST_CONFIG": str(self.sigstore.trust_config_path),
                "SOURCE_DATE_EPOCH": "1700000000",
            }
        )
        return env

    def release(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """`poetry gitlab-release ARGS` in process, in the project, with the job's variables."""
        return self.poetry("gitlab-release", *args, env=env)

    def poetry(self, command: str, *args: str, env: dict[str, str] | None = None) -> Result:
        """`poetry COMMAND ARGS` in process, in the project; `env` replaces the job's variables.

        Anything written to the process's own stdout/stderr meanwhile (a library's logging
        fallback, a stray print) is captured into the result too.
        """
        from cleo.testers.application_tester import ApplicationTester
        from poetry.console.application import Application

        variables = env if env is not None else self.environment()
        saved = dict(os.environ)
        os.environ.update(variables)
        cwd = Path.cwd()
        os.chdir(self.project)
        stray_out, stray_err = io.StringIO(), io.StringIO()
        try:
            application = Application()
            application.auto_exits(False)
            tester = ApplicationTester(application)
            with contextlib.redirect_stdout(stray_out), contextlib.redirect_stderr(stray_err):
                code = tester.execute(shlex.join([command, *args]), decorated=False)
            return Result(
                code,
                tester.io.fetch_output() + stray_out.getvalue(),
                tester.io.fetch_error() + stray_err.getvalue(),
            )
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(saved)

    # --- checks ------------------------------------------------------------------------------

    def check_registries(self, label: str) -> list[str]:
        """Every file of the release exactly once, with dist/'s sha256; nothing else."""
        dist = self.project / "dist"
        artifacts = sorted(
            path.name for path in dist.iterdir() if path.name.endswith((".whl", ".tar.gz"))
        )
        expected = {("pypi", name) for name in artifacts} | {
            ("generic", name + suffix) for name in artifacts for suffix in SIGNATURE_SUFFIXES
        }
        # The CycloneDX SBOM and its bundle go to the generic registry with the signatures.
        for sbom in dist.glob("*.cdx.json"):
            expected |= {("generic", sbom.name), ("generic", sbom.name + ".sigstore.json")}
        stored = self.gitlab.stored_files(PROJECT_ID)
        seen = Counter((item.package_type, item.file_name) for item in stored)
        problems = []
        if len(artifacts) != 2:
            problems.append(f"{label}: dist/ holds {artifacts}, expected a wheel and an sdist")
        for key, count in sorted(seen.items()):
            if key not in expected:
                problems.append(f"{label}: orphaned file {key[1]} in the {key[0]} registry")
            elif count != 1:
                problems.append(f"{label}: {key[1]} stored {count} times")
        for key in sorted(expected - set(seen)):
            problems.append(f"{label}: {key[1]} missing from the {key[0]} registry")
        for item in stored:
            self.figures.files_checked += 1
            if hashlib.sha256(item.content).hexdigest() != item.sha256:
                problems.append(f"{label}: {item.file_name} stored bytes do not match its sha256")
            local = dist / item.file_name
            if local.is_file() and hashlib.sha256(local.read_bytes()).hexdigest() != item.sha256:
                problems.append(f"{label}: {item.file_name} differs from dist/")
        manifest = json.loads((dist / "release.json").read_text(encoding="utf-8"))
        for entry in manifest["files"]:
            if entry["sha256"] != hashlib.sha256((dist / entry["file"]).read_bytes()).hexdigest():
                problems.append(f"{label}: release.json has another sha256 for {entry['file']}")
        return problems


def _error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("Error: ")]


def _clear_failure(result: Result) -> str | None:
    """The one-line error of a failed run, or None when the failure is not clear."""
    errors = _error_lines(result)
    if result.code != 1 or len(errors) != 1 or "Traceback" in result.stderr + result.stdout:
        return None
    return errors[0]


def _shape(message: str) -> str:
    """A failure message without its variable parts, to count kinds of failure."""
    words = []
    for word in message.split():
        if "://" in word or any(char.isdigit() for char in word.strip(":,.()")):
            if word.rstrip(":") in {"502", "503", "429", "500", "504"}:
                words.append(word)
                continue
            words.append("<…>")
        else:
            words.append(word)
    return " ".join(words)[:140]


def soak(harness: Harness, seeds: list[int], rate: float, log: Callable[[str], None]) -> None:
    from sandbox.gitlab import FaultPlan

    figures = harness.figures
    figures.rate = rate
    for seed in seeds:
        harness.gitlab.clear_packages()
        harness.gitlab.reset_log()
        plan = FaultPlan(rate=rate, seed=seed)
        harness.gitlab.set_faults(plan)
        shutil.rmtree(harness.project / "dist", ignore_errors=True)
        figures.runs += 1
        figures.seeds.append(seed)
        attempt = 0
        while True:
            result = harness.release()
            if result.code == 0:
                figures.outcomes["completed" if attempt == 0 else "completed after rerun"] += 1
                break
            message = _clear_failure(result)
            if message is None:
                figures.outcomes["unclear failure"] += 1
                figures.problems.append(
                    f"seed {seed}: exit {result.code} without one clear error: "
                    + (result.stderr.strip().splitlines() or ["(no output)"])[-1][:200]
                )
                break
            figures.failure_messages[_shape(message)] += 1
            if attempt == 0:
                figures.outcomes["failed with a clear error, then rerun"] += 1
            attempt += 1
            figures.reruns += 1
            if attempt > MAX_RERUNS:
                figures.problems.append(f"seed {seed}: still failing after {MAX_RERUNS} reruns")
                break
        for kind, method, _path in plan.injected:
            figures.faults[kind] += 1
            figures.faults_on_uploads += method in {"PUT", "POST"}
        harness.gitlab.set_faults(None)
        if result.code == 0:
            figures.problems += harness.check_registries(f"seed {seed}")
        log(
            f"  run {figures.runs:3d} seed {seed:4d}: {len(plan.injected):2d} faults, "
            f"reruns {attempt}, {'ok' if result.code == 0 else 'FAILED'}"
        )


def scenarios(harness: Harness, log: Callable[[str], None]) -> None:
    from sandbox.gitlab import FaultPlan

    figures = harness.figures
    gitlab, sigstore = harness.gitlab, harness.sigstore
    soak_retries, soak_sign_retries = Counter(figures.retries), figures.sign_retries

    def fresh() -> None:
        gitlab.set_faults(None)
        gitlab.clear_packages()
        shutil.rmtree(harness.project / "dist", ignore_errors=True)

    # 1. Sigstore down while signing: a clear error, nothing published; a rerun completes.
    fresh()
    env = harness.environment()  # minted while Sigstore is up
    sigstore.stop()
    try:
        down = harness.release(env=env)
    finally:
        sigstore.start()
    message = _clear_failure(down)
    stored = len(gitlab.stored_files(PROJECT_ID))
    ok = message is not None and "Sigstore" in message and stored == 0
    rerun = harness.release(env=env)
    ok = ok and rerun.code == 0 and not harness.check_registries("sigstore down")
    figures.scenarios["Sigstore down while signing"] = (
        f"exit {down.code}, {stored} files published, error: {message}; rerun exit {rerun.code}"
    )
    if not ok:
        figures.problems.append(
            "scenario Sigstore down: " + figures.scenarios["Sigstore down while signing"]
        )
    log("  Sigstore down: " + figures.scenarios["Sigstore down while signing"])

    # 2. Rekor answers 503 twice while signing: retried, the release completes.
    fresh()
    before = figures.sign_retries
    sigstore.fail_rekor(2)
    result = harness.release()
    retried = figures.sign_retries - before
    problems = harness.check_registries("rekor 5xx") if result.code == 0 else ["failed"]
    figures.scenarios["Rekor answering 503 twice"] = (
        f"exit {result.code}, {retried} sign retries, registries "
        + ("complete" if not problems else "; ".join(problems))
    )
    if result.code != 0 or retried != 2 or problems:
        figures.problems.append(
            "scenario Rekor 5xx: " + figures.scenarios["Rekor answering 503 twice"]
        )
    log("  Rekor 5xx: " + figures.scenarios["Rekor answering 503 twice"])

    # 3. The packages went up (an earlier, interrupted release), then the generic registry is
    #    down: a clear error and no duplicate; once it is back a rerun completes.
    fresh()
    first = harness.release("--steps", "build,sign,verify")
    packages = _publish_packages_only(harness)
    gitlab.set_faults(FaultPlan(rate=1.0, seed=0, kinds=("503",), path_contains="/generic/"))
    down = harness.release("--steps", "publish")
    message = _clear_failure(down)
    gitlab.set_faults(None)
    rerun = harness.release("--steps", "publish")
    problems = harness.check_registries("generic down") if rerun.code == 0 else ["rerun failed"]
    figures.scenarios["generic registry down after the packages went up"] = (
        f"build/sign exit {first.code}, packages up {packages}, publish exit {down.code} "
        f"({message}); rerun exit {rerun.code}, registries "
        + ("complete, each file once" if not problems else "; ".join(problems))
    )
    if first.code or down.code != 1 or message is None or rerun.code or problems:
        figures.problems.append(
            "scenario generic down: "
            + figures.scenarios["generic registry down after the packages went up"]
        )
    log("  generic down: " + figures.scenarios["generic registry down after the packages went up"])
    figures.scenario_retries = figures.retries - soak_retries
    figures.scenario_retries["sign"] = figures.sign_retries - soak_sign_retries
    figures.retries, figures.sign_retries = soak_retries, soak_sign_retries


def _publish_packages_only(self: Harness) -> int:
    """Upload wheel and sdist alone, as an interrupted earlier release would have left them."""
    from poetry_gitlab_release.config.settings import resolve_settings
    from poetry_gitlab_release.gitlab.client import GitLabClient
    from poetry_gitlab_release.gitlab.connection import Connection
    from poetry_gitlab_release.gitlab.uploads import pypi_fields, upload_pypi
    from poetry_gitlab_release.gitlab.urls import pypi_upload_url

    settings = resolve_settings(
        {"host": self.gitlab.url, "token": self.gitlab.tokens.personal, "project": PROJECT_PATH},
        {},
    )
    count = 0
    with GitLabClient(Connection.from_settings(settings)) as client:
        for path in sorted((self.project / "dist").iterdir()):
            if path.name.endswith((".whl", ".tar.gz")):
                upload_url = pypi_upload_url(settings.api_url, PROJECT_PATH)
                upload_pypi(client, upload_url, path, pypi_fields(path))
                count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--stress-runs", type=int, default=10)
    parser.add_argument("--stress-rate", type=float, default=0.6)
    parser.add_argument("--time-scale", type=float, default=0.02)
    parser.add_argument("--no-scenarios", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)

    figures = Figures()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fault-soak-") as scratch:
        root = Path(scratch)
        _isolate(root / "home")
        sys.path[:0] = [str(ROOT), str(ROOT / "src")]
        harness = Harness(root, args.time_scale, figures)
        try:
            print(f"fault soak: {args.runs} releases, {args.rate:.0%} of GitLab requests failing")
            seeds = list(range(args.first_seed, args.first_seed + args.runs))
            soak(harness, seeds, args.rate, lambda line: print(line, flush=True))
            if args.stress_runs:
                print(f"stress: {args.stress_runs} releases, {args.stress_rate:.0%} failing")
                stress_seeds = list(
                    range(1000 + args.first_seed, 1000 + args.first_seed + args.stress_runs)
                )
                stress = Figures()
                harness.figures = stress
                soak(harness, stress_seeds, args.stress_rate, lambda l: print(l, flush=True))
                harness.figures = figures
                figures.stress = stress.as_json()
                figures.problems += stress.problems
            if not args.no_scenarios:
                print("scenarios")
                scenarios(harness, lambda line: print(line, flush=True))
        finally:
            harness.close()
    figures.seconds = time.perf_counter() - started
    report = figures.as_json()
    print(json.dumps(report, indent=1))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if figures.problems:
        print(f"FAIL: {len(figures.problems)} problems", file=sys.stderr)
        for problem in figures.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print("OK: every run completed, every file once with the right sha256")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
