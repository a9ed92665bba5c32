"""The CI examples users copy cannot rot: their structure is checked, and every job's command
lines run, in stage order, with the real `poetry` against the GitLab and Sigstore stand-ins.

Each job runs as a GitLab runner would run it: in a fresh copy of examples/hello-package (the
checkout), with the artifacts of the jobs of earlier stages copied in (none with
`dependencies: []`), the variables of the file and of the job, the CI variables of a tag pipeline
(`sandbox.environment.release_job_environment`) and `SIGSTORE_ID_TOKEN` only in jobs that
declare `id_tokens`. Each line of `before_script` and `script` runs in bash; the job fails at
the first line that exits non-zero.

Lines that are not run as written, and why (LINE_MAP below):
  - `pip install poetry poetry-gitlab-release` is skipped: the test environment already runs
    Poetry with this checkout of the plugin installed, which is what the line installs.
  - `poetry install` (test job) is skipped: it would resolve and download pytest from PyPI.
  - `poetry run pytest ARGS` (test job) runs as `python -m pytest ARGS` with this environment's
    pytest and `PYTHONPATH=src`, since the project's .venv was not populated.
What is not simulated: images (all jobs use this interpreter; the matrix runs once, for the
running Python), `cache:` (every job starts without .venv), and `rules:` (the pipeline is a tag
pipeline, where every job of the file runs).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import yaml

from sandbox.environment import RELEASE_PROJECT, release_job_environment
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn
from tests.fixtures.poetry import PoetryCli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HELLO = EXAMPLES / "hello-package"
SIX_STAGE = EXAMPLES / "gitlab-ci" / ".gitlab-ci.yml"
SINGLE_JOB = EXAMPLES / "gitlab-ci" / "single-job.gitlab-ci.yml"
TAG = "v0.1.0"
VERSION = "0.1.0"
RELEASE_STAGES = [
    "build",
    "sign",
    "verify",
    "publish_signatures",  # before publish: the one deliberate change to the seed's order
    "publish",
    "consumer_verification",
]
# GitLab keywords that are not jobs.
GLOBAL_KEYS = {"stages", "variables", "default", "workflow", "include"}
# The order in which a job's keys must appear (a job may leave any out).
KEY_ORDER = [
    "stage",
    "image",
    "rules",
    "parallel",
    "variables",
    "dependencies",
    "id_tokens",
    "before_script",
    "script",
    "artifacts",
]
PIP_INSTALL = "pip install poetry poetry-gitlab-release"


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def jobs_of(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: job for name, job in document.items() if name not in GLOBAL_KEYS}


# --- structure ---------------------------------------------------------------------------------


def test_six_stage_pipeline_has_the_seed_stages_in_order() -> None:
    document = load(SIX_STAGE)
    assert document["stages"] == ["test", *RELEASE_STAGES]
    jobs = jobs_of(document)
    # One job per stage, written in stage order, each named after its stage.
    assert list(jobs) == document["stages"]
    for name, job in jobs.items():
        assert job["stage"] == name


def test_every_job_has_its_keys_in_order() -> None:
    for path in (SIX_STAGE, SINGLE_JOB):
        for name, job in jobs_of(load(path)).items():
            unknown = [key for key in job if key not in KEY_ORDER]
            assert not unknown, f"{path.name}: job {name} has unexpected keys {unknown}"
            positions = [KEY_ORDER.index(key) for key in job]
            assert positions == sorted(positions), f"{path.name}: keys of {name} out of order"
            assert job["script"], f"{path.name}: job {name} has no script"


def test_release_jobs_run_only_for_tags() -> None:
    for path in (SIX_STAGE, SINGLE_JOB):
        for name, job in jobs_of(load(path)).items():
            if name == "test":
                assert "rules" not in job
                continue
            assert job["rules"] == [{"if": "$CI_COMMIT_TAG"}], f"{path.name}: {name}"


def test_only_the_signing_job_gets_an_identity_token() -> None:
    six = jobs_of(load(SIX_STAGE))
    with_tokens = [name for name, job in six.items() if "id_tokens" in job]
    assert with_tokens == ["sign"]
    assert six["sign"]["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
    single = jobs_of(load(SINGLE_JOB))
    assert list(single) == ["release"]
    assert single["release"]["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}


def test_in_project_venv_is_cached_on_the_lock_file() -> None:
    document = load(SIX_STAGE)
    assert document["variables"]["POETRY_VIRTUALENVS_IN_PROJECT"] == "true"
    assert document["variables"]["PIP_CACHE_DIR"].startswith("$CI_PROJECT_DIR/")
    cache = document["default"]["cache"]
    assert cache["key"]["files"] == ["poetry.lock"]
    assert "$PYTHON_VERSION" in cache["key"]["prefix"]  # one .venv per interpreter
    assert ".venv/" in cache["paths"]
    assert ".cache/pip/" in cache["paths"]


def test_test_job_is_a_matrix_with_a_junit_report() -> None:
    test = jobs_of(load(SIX_STAGE))["test"]
    assert test["image"] == "python:$PYTHON_VERSION"
    (entry,) = test["parallel"]["matrix"]
    versions = entry["PYTHON_VERSION"]
    assert len(versions) >= 2
    assert all(re.fullmatch(r"3\.\d+", version) for version in versions)
    report = test["artifacts"]["reports"]["junit"]
    assert any(f"--junitxml={report}" in line for line in test["script"])
    assert test["artifacts"]["when"] == "always"


def test_the_docs_and_readme_show_the_examples_verbatim() -> None:
    single = SINGLE_JOB.read_text(encoding="utf-8")
    for page in (ROOT / "README.md", ROOT / "docs" / "getting-started.md"):
        assert single in page.read_text(encoding="utf-8"), f"{page.name} differs from {SINGLE_JOB}"
    recipe = (ROOT / "docs" / "ci-recipe.md").read_text(encoding="utf-8")
    assert SIX_STAGE.read_text(encoding="utf-8") in recipe
    assert single in recipe


# --- running the jobs --------------------------------------------------------------------------


@dataclass
class Pipeline:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    cli: PoetryCli
    workdir: Path
    ci: dict[str, str]
    artifacts: Path = field(init=False)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.artifacts = self.workdir / "artifacts"
        self.artifacts.mkdir()


def expand(value: str, env: Mapping[str, str]) -> str:
    """GitLab's expansion of $VAR and ${VAR} in `variables:` values."""
    return re.sub(r"\$(?:\{(\w+)\}|(\w+))", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def map_line(line: str) -> str | None:
    """The command to run for a script line, or None to skip it (see the module docstring)."""
    if line == PIP_INSTALL:
        return None
    if line == "poetry install":
        return None
    if line.startswith("poetry run pytest"):
        return f"PYTHONPATH=src {sys.executable} -m pytest -p no:cacheprovider" + line[17:]
    return line


def run_job(pipeline: Pipeline, document: Mapping[str, Any], name: str) -> Path:
    job = document[name]
    checkout = pipeline.workdir / name
    shutil.copytree(HELLO, checkout, ignore=shutil.ignore_patterns("dist", ".venv"))
    if job.get("dependencies", None) != []:
        shutil.copytree(pipeline.artifacts, checkout, dirs_exist_ok=True)
    env = dict(pipeline.ci)
    env["CI_PROJECT_DIR"] = str(checkout)
    env["CI_JOB_NAME"] = name
    if "id_tokens" not in job:
        env.pop("SIGSTORE_ID_TOKEN", None)
    matrix = job.get("parallel", {}).get("matrix", [{}])[0]
    variables = {
        **document.get("variables", {}),
        **job.get("variables", {}),
        **dict.fromkeys(matrix, f"{sys.version_info.major}.{sys.version_info.minor}"),
    }
    for key, value in variables.items():
        env[key] = expand(str(value), env)
    shell_env = pipeline.cli.environment(env)
    shell_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{shell_env['PATH']}"
    lines = [
        *job.get("before_script", document["default"].get("before_script", [])),
        *job["script"],
    ]
    for line in lines:
        command = map_line(line)
        if command is None:
            pipeline.skipped.append(f"{name}: {line}")
            continue
        result = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", command],
            cwd=checkout,
            env=shell_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (
            f"job {name}: `{line}` exited {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        pipeline.ran.append(f"{name}: {line}")
    artifacts = job.get("artifacts", {})
    for pattern in artifacts.get("paths", []):
        matches = list(checkout.glob(pattern.rstrip("/")))
        assert matches, f"job {name}: artifact path {pattern} matched nothing"
        for match in matches:
            target = pipeline.artifacts / match.relative_to(checkout)
            if match.is_dir():
                shutil.copytree(match, target, dirs_exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(match, target)
    for report in artifacts.get("reports", {}).values():
        suite = ElementTree.parse(checkout / report).getroot()
        assert suite.tag in {"testsuite", "testsuites"}, f"job {name}: {report} is not JUnit"
    return checkout


@pytest.fixture
def pipeline(tmp_path: Path, poetry_cli: PoetryCli) -> Iterator[Pipeline]:
    with (
        GitLabStandIn(Scenario.default()) as gitlab,
        SigstoreStandIn(issuer=gitlab.url, state_dir=tmp_path / "sigstore") as sigstore,
    ):
        ci = release_job_environment(gitlab, sigstore, ref=TAG)
        ci["SOURCE_DATE_EPOCH"] = "1700000000"
        yield Pipeline(gitlab, sigstore, poetry_cli, tmp_path, ci)


def published(pipeline: Pipeline) -> set[tuple[str, str]]:
    project_id = pipeline.gitlab.project_id(RELEASE_PROJECT)
    return {(f.package_type, f.file_name) for f in pipeline.gitlab.stored_files(project_id)}


@pytest.mark.e2e
@pytest.mark.slow
def test_six_stage_pipeline_runs_against_the_stand_ins(pipeline: Pipeline) -> None:
    document = load(SIX_STAGE)
    for stage in document["stages"]:
        checkout = run_job(pipeline, document, stage)
        if stage == "test":
            cases = ElementTree.parse(checkout / "report.xml").getroot().iter("testcase")
            assert list(cases), "the test job's JUnit report has no test case"
        if stage == "publish_signatures":
            # Signatures are up, packages not yet: the order a consumer must never see reversed.
            kinds = {kind for kind, _ in published(pipeline)}
            assert kinds == {"generic"}, kinds
    artifacts = ("hello_package-0.1.0.tar.gz", "hello_package-0.1.0-py3-none-any.whl")
    stored = published(pipeline)
    for name in artifacts:
        assert ("pypi", name) in stored
        assert ("generic", f"{name}.sigstore.json") in stored
        assert ("generic", f"{name}.publish.attestation") in stored
    # Every line ran except the documented ones.
    assert pipeline.skipped == [
        *(f"{stage}: {PIP_INSTALL}" for stage in ["test"]),
        "test: poetry install",
        *(f"{stage}: {PIP_INSTALL}" for stage in RELEASE_STAGES),
    ]
    assert len(pipeline.ran) == sum(len(job["script"]) for job in jobs_of(document).values()) - 1


@pytest.mark.e2e
@pytest.mark.slow
def test_single_job_pipeline_runs_against_the_stand_ins(pipeline: Pipeline) -> None:
    document = {"default": {}, **load(SINGLE_JOB)}
    checkout = run_job(pipeline, document, "release")
    assert (checkout / "dist" / "release.json").is_file()
    stored = published(pipeline)
    assert ("pypi", "hello_package-0.1.0-py3-none-any.whl") in stored
    assert ("generic", "hello_package-0.1.0-py3-none-any.whl.sigstore.json") in stored
    assert pipeline.skipped == [f"release: {PIP_INSTALL}"]
