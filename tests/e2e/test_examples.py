"""The CI files users copy cannot rot: they are run by a GitLab CI implementation.

gitlab-ci-local (tests/fixtures/ci_local.py) runs the pipelines against the GitLab and
Sigstore stand-ins, each in a fresh git checkout of examples/hello-package tagged v0.1.0 with
the stand-ins' CI variables of a tag pipeline:

- the component file (examples/gitlab-ci/component.gitlab-ci.yml), which includes this
  repository's `release` component (templates/release.yml) with inputs; gitlab-ci-local
  expands it. The `pipelines` component runs in the same checkout with a read_api token.
- the single job (examples/gitlab-ci/single-job.gitlab-ci.yml).

Each publishes the release to the stand-ins and its consumer job verifies and installs it. The
hand-written six-stage file (examples/gitlab-ci/.gitlab-ci.yml) is not run a second time:
gitlab-ci-local's own expansion shows its release jobs are the component's, key for key
(test_six_stage_file_is_the_component_expanded), so the component's run is its run.

What is not run, and why: the six-stage file's `test` job (`poetry install` would resolve
pytest from PyPI, once per entry of its matrix); images (the shell executor runs every job with
this interpreter and this checkout's plugin); `id_tokens` (gitlab-ci-local does not mint them,
so SIGSTORE_ID_TOKEN is a variable of every job; the structure tests check that only the sign
job declares one).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import tomllib
import yaml

from sandbox.environment import RELEASE_PROJECT, release_job_environment
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.gitlab.releases import store as releases_store
from sandbox.sigstore import SigstoreStandIn
from tests.fixtures.ci_local import COMPONENT_HOST, COMPONENT_PROJECT, LocalPipeline, require_tools
from tests.fixtures.poetry import PoetryCli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "gitlab-ci"
SIX_STAGE = EXAMPLES / ".gitlab-ci.yml"
SINGLE_JOB = EXAMPLES / "single-job.gitlab-ci.yml"
COMPONENT_FILE = EXAMPLES / "component.gitlab-ci.yml"
TEMPLATES = ROOT / "templates"
TAG = "v0.1.0"
RELEASE_STAGES = [
    "build",
    "sign",
    "verify",
    "publish_signatures",  # before publish: the one deliberate change to the seed's order
    "publish",
    "consumer_verification",
]
ARTIFACTS = ("hello_package-0.1.0.tar.gz", "hello_package-0.1.0-py3-none-any.whl")
SBOM = "hello_package-0.1.0.cdx.json"
# GitLab keywords that are not jobs.
GLOBAL_KEYS = {"stages", "variables", "default", "workflow", "include", "spec"}
# The order in which a job's keys must appear (a job may leave any out).
KEY_ORDER = [
    "extends",
    "stage",
    "image",
    "rules",
    "allow_failure",
    "parallel",
    "variables",
    "dependencies",
    "id_tokens",
    "before_script",
    "script",
    "artifacts",
]
PLUGIN_VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def component(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header (spec) and the body of templates/<name>.yml, the two YAML documents."""
    header, body = yaml.safe_load_all((TEMPLATES / f"{name}.yml").read_text(encoding="utf-8"))
    return header, body


def jobs_of(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: job
        for name, job in document.items()
        if name not in GLOBAL_KEYS and not name.startswith(".")
    }


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
    documents = {path.name: load(path) for path in (SIX_STAGE, SINGLE_JOB)}
    for name in ("release", "pipelines"):
        documents[f"templates/{name}.yml"] = component(name)[1]
    for source, document in documents.items():
        for name, job in document.items():
            if name in GLOBAL_KEYS:
                continue
            unknown = [key for key in job if key not in [*KEY_ORDER, "cache"]]
            assert not unknown, f"{source}: job {name} has unexpected keys {unknown}"
            positions = [KEY_ORDER.index(key) for key in job if key != "cache"]
            assert positions == sorted(positions), f"{source}: keys of {name} out of order"
            assert name.startswith(".") or job["script"], f"{source}: job {name} has no script"


def test_release_jobs_run_only_for_tags() -> None:
    for path in (SIX_STAGE, SINGLE_JOB):
        for name, job in jobs_of(load(path)).items():
            if name == "test":
                assert "rules" not in job
                continue
            assert job["rules"] == [{"if": "$CI_COMMIT_TAG"}], f"{path.name}: {name}"


def test_only_the_signing_job_gets_an_identity_token() -> None:
    for document in (load(SIX_STAGE), component("release")[1]):
        jobs = jobs_of(document)
        with_tokens = [name for name, job in jobs.items() if "id_tokens" in job]
        assert with_tokens == ["sign"]
        assert jobs["sign"]["id_tokens"] == {"SIGSTORE_ID_TOKEN": {"aud": "sigstore"}}
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


def test_component_inputs_are_documented_and_typed() -> None:
    for name in ("release", "pipelines"):
        header, _ = component(name)
        inputs = header["spec"]["inputs"]
        text = (TEMPLATES / f"{name}.yml").read_text(encoding="utf-8")
        used = set(re.findall(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]", text))
        # Every input is used and every use is declared (GitLab refuses unknown ones).
        assert used == set(inputs), f"{name}: declared {sorted(inputs)}, used {sorted(used)}"
        for key, spec in inputs.items():
            assert spec.get("description"), f"{name}: input {key} has no description"
            kind = spec.get("type", "string")
            if "default" in spec:
                expected: dict[str, tuple[type, ...]] = {
                    "string": (str,),
                    "boolean": (bool,),
                    "number": (int, float),
                }
                assert isinstance(spec["default"], expected[kind]), f"{name}: default of {key}"
    release_inputs = component("release")[0]["spec"]["inputs"]
    assert "default" not in release_inputs["package-name"]  # mandatory
    assert {f"{stage.replace('_', '-')}-stage" for stage in RELEASE_STAGES} <= set(release_inputs)


def test_the_docs_and_readme_show_the_examples_verbatim() -> None:
    single = SINGLE_JOB.read_text(encoding="utf-8")
    with_component = COMPONENT_FILE.read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert with_component in readme, "README.md's quick start differs from the component example"
    getting_started = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
    assert with_component in getting_started
    assert single in getting_started
    recipe = (ROOT / "docs" / "ci-recipe.md").read_text(encoding="utf-8")
    assert recipe.index(with_component) < recipe.index(single), "the component comes first"
    assert SIX_STAGE.read_text(encoding="utf-8") in recipe
    # The component is included at the version this checkout would release.
    for path in (COMPONENT_FILE,):
        references = re.findall(r"- component: (\S+)", path.read_text(encoding="utf-8"))
        assert references == [f"{COMPONENT_HOST}/{COMPONENT_PROJECT}/release@{PLUGIN_VERSION}"]


# --- running the pipelines ---------------------------------------------------------------------


@dataclass
class StandIns:
    gitlab: GitLabStandIn
    sigstore: SigstoreStandIn
    ci: dict[str, str]
    environment: dict[str, str]

    def published(self) -> set[tuple[str, str]]:
        project_id = self.gitlab.project_id(RELEASE_PROJECT)
        return {(f.package_type, f.file_name) for f in self.gitlab.stored_files(project_id)}


@pytest.fixture
def stand_ins(tmp_path: Path, poetry_cli: PoetryCli) -> Iterator[StandIns]:
    require_tools()
    with (
        GitLabStandIn(Scenario.default()) as gitlab,
        SigstoreStandIn(issuer=gitlab.url, state_dir=tmp_path / "sigstore") as sigstore,
    ):
        ci = release_job_environment(gitlab, sigstore, ref=TAG)
        ci["SOURCE_DATE_EPOCH"] = "1700000000"
        yield StandIns(gitlab, sigstore, ci, poetry_cli.environment())


def components() -> dict[str, str]:
    return {
        f"{name}@{PLUGIN_VERSION}": (TEMPLATES / f"{name}.yml").read_text(encoding="utf-8")
        for name in ("release", "pipelines")
    }


def passed(result: subprocess.CompletedProcess[str], jobs: list[str]) -> None:
    report = f"--- stdout\n{result.stdout[-8000:]}\n--- stderr\n{result.stderr[-4000:]}"
    assert result.returncode == 0, f"gitlab-ci-local exited {result.returncode}\n{report}"
    for job in jobs:
        assert re.search(rf"PASS\s+{re.escape(job)}\s*$", result.stdout, re.MULTILINE), report


def assert_released_and_verified(stand_ins: StandIns, pipeline: LocalPipeline) -> None:
    stored = stand_ins.published()
    for name in ARTIFACTS:
        assert ("pypi", name) in stored
        assert ("generic", f"{name}.sigstore.json") in stored
        assert ("generic", f"{name}.publish.attestation") in stored
    assert ("generic", SBOM) in stored
    assert ("generic", f"{SBOM}.sigstore.json") in stored
    assert_release_page(stand_ins)
    # The consumer job verified every file (the SBOM too) and installed the package.
    report = pipeline.checkout / ".gitlab-ci-local" / "builds" / "consumer_verification"
    suite = ElementTree.parse(report / "verification.xml").getroot()
    cases = list(suite.iter("testcase"))
    assert {case.get("name") for case in cases} == {*ARTIFACTS, SBOM}
    failed = [
        case for case in cases if case.find("failure") is not None or case.find("error") is not None
    ]
    assert not failed, "a verification case failed"
    assert all("verdict: verified" in (case.findtext("system-out") or "") for case in cases)
    assert "Name: hello-package" in pipeline.log("consumer_verification")


def assert_release_page(stand_ins: StandIns) -> None:
    """The tag's Release links every file of the release (package links) and release.json."""
    project_id = stand_ins.gitlab.project_id(RELEASE_PROJECT)
    release = releases_store(stand_ins.gitlab.app).release(project_id, TAG)
    assert release is not None, "no Release page for the tag"
    names = {link.name: link for link in release.links}
    expected = {
        *ARTIFACTS,
        *(f"{name}.sigstore.json" for name in (*ARTIFACTS, SBOM)),
        *(f"{name}.publish.attestation" for name in ARTIFACTS),
        SBOM,
        "release.json",
    }
    assert set(names) == expected
    assert {link.link_type for link in release.links} == {"package"}
    assert all(link.filepath == f"/{name}" for name, link in names.items())
    assert "Signed by `https://" in release.description  # the generated notes
    assert "poetry gitlab-verify hello-package==0.1.0" in release.description


def signatures_before_packages(stand_ins: StandIns) -> None:
    """Every signature upload happened before the first package upload."""
    log = [entry for entry in stand_ins.gitlab.request_log if entry.method in ("PUT", "POST")]
    generic = [i for i, e in enumerate(log) if "/packages/generic/" in e.path and e.status < 300]
    pypi = [i for i, e in enumerate(log) if e.path.endswith("/packages/pypi") and e.status < 300]
    assert generic and pypi
    assert max(generic) < min(pypi), [(e.method, e.path) for e in log]


@pytest.mark.e2e
@pytest.mark.slow
def test_single_job_pipeline_runs_in_gitlab_ci_local(tmp_path: Path, stand_ins: StandIns) -> None:
    pipeline = LocalPipeline.create(tmp_path, SINGLE_JOB.read_text(encoding="utf-8"))
    result = pipeline.run(variables=stand_ins.ci, environment=stand_ins.environment)
    passed(result, ["release"])
    assert pipeline.artifact("release", "dist/release.json").is_file()
    stored = stand_ins.published()
    for name in ARTIFACTS:
        assert ("pypi", name) in stored
        assert ("generic", f"{name}.sigstore.json") in stored
    signatures_before_packages(stand_ins)
    assert_release_page(stand_ins)


@pytest.mark.e2e
@pytest.mark.slow
def test_component_pipeline_runs_in_gitlab_ci_local(tmp_path: Path, stand_ins: StandIns) -> None:
    pipeline = LocalPipeline.create(
        tmp_path, COMPONENT_FILE.read_text(encoding="utf-8"), components=components()
    )
    result = pipeline.run(variables=stand_ins.ci, environment=stand_ins.environment)
    passed(result, RELEASE_STAGES)
    assert_released_and_verified(stand_ins, pipeline)
    signatures_before_packages(stand_ins)
    manifest = json.loads(pipeline.artifact("publish", "dist/release.json").read_text())
    assert manifest["version"] == "0.1.0"

    # The pipelines component, with a read_api token (a CI job token cannot list a group).
    variables = {**stand_ins.ci, "GITLAB_TOKEN": stand_ins.gitlab.tokens.read_api}
    builds = pipeline.checkout / ".gitlab-ci-local" / "builds" / "group-pipelines"

    def dashboard(group: str) -> subprocess.CompletedProcess[str]:
        (pipeline.checkout / ".gitlab-ci.yml").write_text(
            "include:\n"
            f"  - component: {COMPONENT_HOST}/{COMPONENT_PROJECT}/pipelines@{PLUGIN_VERSION}\n"
            "    inputs:\n"
            f"      group: {group}\n",
            encoding="utf-8",
        )
        return pipeline.run(variables=variables, environment=stand_ins.environment)

    # Only a running pipeline (as the job's own pipeline is, in its project's group): passes.
    running = dashboard("demo-group/platform")
    passed(running, ["group-pipelines"])
    document = json.loads(pipeline.artifact("group-pipelines", "pipelines.json").read_text())
    assert [p["pipeline"]["status"] for p in document["projects"]] == ["running"]
    assert (builds / "metrics.txt").read_text().rstrip().endswith("# EOF")
    # A failed pipeline in the group: the job fails, after writing both reports.
    (builds / "metrics.txt").unlink()
    failing = dashboard("demo-group")
    assert failing.returncode != 0, failing.stdout[-4000:]
    assert re.search(r"FAIL\s+group-pipelines", failing.stdout), failing.stdout[-4000:]
    document = json.loads(pipeline.artifact("group-pipelines", "pipelines.json").read_text())
    assert "failed" in {p["pipeline"]["status"] for p in document["projects"] if p["pipeline"]}
    assert (builds / "metrics.txt").read_text().rstrip().endswith("# EOF")


def expanded(path: Path, tmp_path: Path) -> dict[str, Any]:
    """gitlab-ci-local --preview: the file with includes, extends and defaults expanded."""
    pipeline = LocalPipeline.create(
        tmp_path, path.read_text(encoding="utf-8"), components=components()
    )
    result = pipeline.run("--preview", variables={}, environment={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout[result.stdout.index("---") :]
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def test_six_stage_file_is_the_component_expanded(tmp_path: Path) -> None:
    require_tools()
    by_hand = expanded(SIX_STAGE, tmp_path / "by-hand")
    from_component = expanded(COMPONENT_FILE, tmp_path / "component")
    for name in RELEASE_STAGES:
        mine, theirs = dict(by_hand[name]), dict(from_component[name])
        # Variables: the hand-written file sets most globally, the component on its jobs.
        mine["variables"] = {**by_hand.get("variables", {}), **mine.get("variables", {})}
        theirs["variables"] = {**from_component.get("variables", {}), **theirs["variables"]}
        if name == "consumer_verification":
            # The component's input consumer-verification (true) is part of its rule.
            assert theirs.pop("rules") == [{"if": '$CI_COMMIT_TAG && "true" == "true"'}]
            mine.pop("rules")
        assert mine == theirs, name
