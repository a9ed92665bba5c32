"""`poetry gitlab-pipelines` against the GitLab stand-in: output equals the scenario's truth.

Most cases run the command in-process (cleo CommandTester, same code path as the CLI); the
`real poetry` cases go through the installed `poetry` executable.
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cleo.io.outputs.output import Verbosity
from cleo.testers.command_tester import CommandTester

from poetry_gitlab_release.pipelines.command import PipelinesCommand
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.gitlab.scenario import pipeline_truth
from tests.fixtures.poetry import PoetryCli

pytestmark = pytest.mark.e2e

Run = Callable[..., tuple[int, str, str]]
SHORT = {"waiting_for_resource": "waiting", "waiting_for_callback": "waiting"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith(("CI_", "GITLAB_", "POETRY_", "NO_COLOR")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("POETRY_CONFIG_DIR", str(tmp_path / "poetry-config"))
    monkeypatch.setenv("POETRY_KEYRING_ENABLED", "false")
    monkeypatch.chdir(tmp_path)  # outside any Poetry project


@pytest.fixture(scope="module")
def generated() -> Iterator[GitLabStandIn]:
    """80 projects in nested subgroups, some archived, some without pipelines."""
    with GitLabStandIn(Scenario.generate(projects=80, seed=3)) as standin:
        yield standin


def run_in_process(standin: GitLabStandIn, monkeypatch: pytest.MonkeyPatch) -> Run:
    def run(args: str, *, token: str | None = None, verbose: bool = False) -> Any:
        monkeypatch.setenv("GITLAB_TOKEN", token or standin.tokens.read_api)
        tester = CommandTester(PipelinesCommand())
        verbosity = Verbosity.VERBOSE if verbose else Verbosity.NORMAL
        code = tester.execute(f"--host {standin.url} {args}", verbosity=verbosity)
        return code, tester.io.fetch_output(), tester.io.fetch_error()

    return run


def expected(
    scenario: Scenario, group: str, *, ref: str | None = None, include_archived: bool = False
) -> dict[str, dict[str, Any] | None]:
    """Ground truth in the JSON schema's terms, keyed by full path."""
    truth: dict[str, dict[str, Any] | None] = {}
    for project in scenario.expected_group_projects(group, include_archived=include_archived):
        if ref == "default":
            pipeline = scenario.latest_pipeline(project.id)
        elif ref is None:
            pipelines = scenario.project_pipelines(project.id)
            pipeline = pipelines[0] if pipelines else None
        else:
            pipeline = scenario.latest_pipeline(project.id, ref)
        if pipeline is None:
            truth[project.full_path] = None
            continue
        known = pipeline_truth(pipeline)
        truth[project.full_path] = {
            "id": known.id,
            "status": known.status,
            "ref": known.ref,
            "sha": known.sha,
            "duration_seconds": known.duration,
            "stages": [{"name": name, "status": status} for name, status in known.stages],
            "failed_jobs": sorted(known.failed_jobs),
        }
    return truth


def shown(document: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    result: dict[str, dict[str, Any] | None] = {}
    for project in document["projects"]:
        pipeline = project["pipeline"]
        if pipeline is None:
            result[project["full_path"]] = None
            continue
        result[project["full_path"]] = {
            "id": pipeline["id"],
            "status": pipeline["status"],
            "ref": pipeline["ref"],
            "sha": pipeline["sha"],
            "duration_seconds": pipeline["duration_seconds"],
            "stages": pipeline["stages"],
            "failed_jobs": sorted(job["name"] for job in pipeline["failed_jobs"]),
        }
    return result


def subgroup_of(scenario: Scenario, root: str) -> str:
    """A subgroup two levels down that holds projects, for nested-exclusion tests."""
    for project in sorted(scenario.expected_group_projects(root), key=lambda p: p.full_path):
        parts = project.full_path.split("/")
        if len(parts) >= 4:
            return "/".join(parts[:-1])
    raise AssertionError("the scenario has no nested subgroup with projects")


@pytest.mark.parametrize("api", ["graphql", "rest"])
@pytest.mark.parametrize("ref", [None, "default", "main"])
def test_json_equals_ground_truth(
    generated: GitLabStandIn, monkeypatch: pytest.MonkeyPatch, api: str, ref: str | None
) -> None:
    run = run_in_process(generated, monkeypatch)
    ref_arg = f" --ref {ref}" if ref else ""
    code, out, err = run(f"--group acme --format json --api {api}{ref_arg}")
    document = json.loads(out)
    truth = expected(generated.scenario, "acme", ref=ref)
    assert shown(document) == truth, err
    assert document["api"] == api and document["ref"] == ref
    assert any(value is None for value in truth.values())  # pipeline-less projects included
    assert any(path.count("/") >= 3 for path in truth)  # nested subgroups included
    statuses = {value["status"] for value in truth.values() if value is not None}
    assert code == (1 if "failed" in statuses else 3)
    if api == "graphql":
        assert document["requests"] == 1  # < 100 projects: one GraphQL page


@pytest.mark.parametrize("api", ["graphql", "rest"])
def test_ref_default_is_the_default_branch_heads_pipeline(
    monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    """After a push whose pipeline does not exist yet, `--ref default` shows no pipeline for
    that project (GitLab's answer for the head commit), not an older default-branch one."""
    scenario = Scenario.default().with_new_head("demo-group/hello-package")
    with GitLabStandIn(scenario) as standin:
        run = run_in_process(standin, monkeypatch)
        _, out, err = run(f"--group demo-group --format json --api {api} --ref default")
    rows = shown(json.loads(out))
    assert rows == expected(scenario, "demo-group", ref="default"), err
    assert rows["demo-group/hello-package"] is None
    assert any(scenario.project_pipelines(100))  # older pipelines of main exist


def test_archived_projects_only_with_include_archived(
    generated: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(generated, monkeypatch)
    _, out, _ = run("--group acme --format json --include-archived")
    document = json.loads(out)
    truth = expected(generated.scenario, "acme", include_archived=True)
    assert shown(document) == truth
    archived = [p["full_path"] for p in document["projects"] if p["archived"]]
    assert archived and not set(archived) & set(expected(generated.scenario, "acme"))


def test_exclude_names_globs_and_subgroups(
    generated: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(generated, monkeypatch)
    subgroup = subgroup_of(generated.scenario, "acme")
    relative = subgroup.split("/", 1)[1]
    _, out, _ = run(
        f"--group-id acme --format json --exclude service-1,service-2* --exclude {relative}"
    )
    paths = {p["full_path"] for p in json.loads(out)["projects"]}
    truth = set(expected(generated.scenario, "acme"))
    removed = {
        path
        for path in truth
        if path.rsplit("/", 1)[1] == "service-1"
        or path.rsplit("/", 1)[1].startswith("service-2")
        or path.startswith(subgroup + "/")
    }
    assert removed and paths == truth - removed


def test_failed_only_gates_on_failures(
    generated: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(generated, monkeypatch)
    code, out, _ = run("--group acme --format json --failed-only")
    document = json.loads(out)
    truth = expected(generated.scenario, "acme")
    failed = {path for path, value in truth.items() if value and value["status"] == "failed"}
    assert {p["full_path"] for p in document["projects"]} == failed
    assert code == (1 if failed else 0)


def test_table_shows_every_project_and_a_summary(
    generated: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(generated, monkeypatch)
    _, out, _ = run("--group acme --stages-width 4")
    lines = out.rstrip("\n").split("\n")
    truth = expected(generated.scenario, "acme")
    body = lines[1:-1]
    assert len(body) == len(truth)
    ordered = sorted(truth.items(), key=lambda item: item[0].lower())
    for line, (path, value) in zip(body, ordered, strict=True):
        assert line.startswith(path.split("/", 1)[1])
        if value is None:
            assert "(no pipeline)" in line
        else:
            assert line.split()[1] == SHORT.get(value["status"], value["status"])
            for stage in value["stages"]:
                assert " " + stage["name"][:4] in line
    none = sum(1 for value in truth.values() if value is None)
    assert lines[-1].startswith(f"{len(truth)} projects: ")
    assert lines[-1].endswith(f"{none} without pipeline")
    assert "\x1b[" not in out  # not a terminal: no colour


def test_openmetrics_and_logs(generated: GitLabStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_in_process(generated, monkeypatch)
    _, out, _ = run("--group acme --format openmetrics")
    truth = expected(generated.scenario, "acme")
    path, value = next((p, v) for p, v in sorted(truth.items()) if v)
    assert (
        f'gitlab_ci_pipeline_status{{project="{path}",ref="{value["ref"]}",status="{value["status"]}"}} 1'
        in out
    )
    assert out.endswith("# EOF\n")
    _, out, _ = run("--group acme --format json --failed-only --logs 3")
    jobs = [j for p in json.loads(out)["projects"] for j in p["pipeline"]["failed_jobs"]]
    assert jobs and all(isinstance(j["log_tail"], list) for j in jobs)
    assert all(len(j["log_tail"]) <= 3 for j in jobs)


def test_pagination_over_1000_projects(
    gitlab_standin_large: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = run_in_process(gitlab_standin_large, monkeypatch)
    gitlab_standin_large.reset_log()
    _, out, _ = run("--group acme --format json")
    document = json.loads(out)
    truth = expected(gitlab_standin_large.scenario, "acme")
    assert len(truth) > 800
    assert shown(document) == truth
    pages = math.ceil(len(truth) / 100)
    assert document["requests"] == pages == len(gitlab_standin_large.request_log)


def test_429_with_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    with GitLabStandIn(Scenario.generate(projects=250, seed=5)) as standin:
        standin.set_rate_limit(2, period=1.0)
        run = run_in_process(standin, monkeypatch)
        code, out, err = run("--group acme --format json", verbose=True)
        statuses = [entry.status for entry in standin.request_log]
        assert 429 in statuses, err
        assert code == 1, err
        assert shown(json.loads(out)) == expected(standin.scenario, "acme")
        assert "HTTP 429" in err and "retrying in" in err


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "token_kind", "code", "message"),
    [
        ("--group no-such-group", "read_api", 1, "group 'no-such-group' not found on"),
        ("--group 987654", "read_api", 1, "group '987654' not found on"),
        ("--group demo-group", "no_scope", 1, "read_api scope"),
        ("--group demo-group", "expired", 1, "GitLab refused the request"),
        ("--group demo-group", "outsider", 1, "not found"),
        ("", "read_api", 2, "missing group: pass --group"),
        ("--group demo-group --format xml", "read_api", 2, "invalid --format 'xml'"),
        ("--group demo-group --interval 0", "read_api", 2, "--interval must be between 2"),
        ("--group demo-group --stages-width x", "read_api", 2, "--stages-width takes a whole"),
        ("--group a --group-id b", "read_api", 2, "--group and --group-id name different"),
        ("--group demo-group --api soap", "read_api", 2, "invalid --api 'soap'"),
    ],
)
def test_bad_input(
    gitlab_standin_shared: GitLabStandIn,
    monkeypatch: pytest.MonkeyPatch,
    args: str,
    token_kind: str,
    code: int,
    message: str,
) -> None:
    run = run_in_process(gitlab_standin_shared, monkeypatch)
    token = getattr(gitlab_standin_shared.tokens, token_kind)
    result, out, err = run(args, token=token)
    assert (result, out) == (code, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one line
    assert token not in err


def test_job_token_is_refused_with_a_clear_message(
    gitlab_standin_shared: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    standin = gitlab_standin_shared
    variables = standin.ci_variables("demo-group/hello-package")
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    standin.reset_log()
    tester = CommandTester(PipelinesCommand())
    code = tester.execute("--group demo-group")
    err = tester.io.fetch_error()
    assert code == 2
    assert "CI job token (CI_JOB_TOKEN) cannot list a group's projects or pipelines" in err
    assert variables["CI_JOB_TOKEN"] not in err
    assert standin.request_log == []


def test_unreachable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("GITLAB_TOKEN", "glpat-unreachable")
    tester = CommandTester(PipelinesCommand())
    code = tester.execute(f"--host http://127.0.0.1:{port} --group demo-group")
    err = tester.io.fetch_error()
    assert code == 1
    assert f"cannot connect to 127.0.0.1:{port}" in err


def test_poetry_stored_credentials_are_the_last_fallback(
    gitlab_standin_shared: GitLabStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITLAB_TOKEN", raising=False)
    monkeypatch.setenv("POETRY_HTTP_BASIC_GITLAB_USERNAME", "__token__")
    monkeypatch.setenv("POETRY_HTTP_BASIC_GITLAB_PASSWORD", gitlab_standin_shared.tokens.read_api)
    tester = CommandTester(PipelinesCommand())
    code = tester.execute(f"--host {gitlab_standin_shared.url} --group demo-group --format json")
    document = json.loads(tester.io.fetch_output())
    assert code == 1  # web-app's latest pipeline failed
    assert {p["full_path"] for p in document["projects"]} == set(
        expected(gitlab_standin_shared.scenario, "demo-group")
    )


# --- through the real poetry executable -------------------------------------------------------


def test_real_poetry_outside_a_project(
    gitlab_standin_shared: GitLabStandIn, poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    standin = gitlab_standin_shared
    env = {"GITLAB_TOKEN": standin.tokens.read_api}
    args = shlex.split(f"gitlab-pipelines --host {standin.url} -g demo-group --stages-width 5")
    result = poetry_cli.run(*args, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1, result.stderr  # one failed pipeline gates
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PROJECT", "STATUS", "REF", "AGE", "DURATION", "STAGES"]
    by_path = {line.split()[0]: line for line in lines[1:-1]}
    assert set(by_path) == {"docs", "hello-package", "platform/api", "web-app"}
    assert "(no pipeline)" in by_path["docs"]
    assert by_path["web-app"].split()[1] == "failed" and "✘ build" in by_path["web-app"]
    assert by_path["platform/api"].split()[1] == "running"
    assert lines[-1] == "4 projects: 1 failed, 1 running, 1 success, 1 without pipeline"
    assert standin.tokens.read_api not in result.stdout + result.stderr

    result = poetry_cli.run(
        *args, "--exclude", "web-app", "--format", "json", cwd=tmp_path, env=env, timeout=60
    )
    assert result.returncode == 3  # nothing failed, platform/api still running
    assert json.loads(result.stdout)["summary"]["by_status"] == {
        "running": 1,
        "success": 1,
        "none": 1,
    }


@pytest.mark.xdist_group("gitlab-real-schemas")
def test_real_poetry_falls_back_to_rest_on_gitlab_16_3(
    make_gitlab_standin: Callable[..., GitLabStandIn], poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    """GitLab 16.3's real schema has no `includeArchived` on Group.projects (nor
    Pipeline.source), and its `pipeline` needs an iid or sha: every --ref mode falls back to
    REST, says why at -v, and shows the same truth."""
    from tests.sandbox.gitlab.real_schemas import schema_path

    standin = make_gitlab_standin(graphql_schema=schema_path("16.3"))
    env = {"GITLAB_TOKEN": standin.tokens.read_api}
    for ref in ("", "default", "main"):
        ref_args = ("--ref", ref) if ref else ()
        result = poetry_cli.run(
            "gitlab-pipelines", "--host", standin.url, "-g", "demo-group", "-f", "json", "-v",
            *ref_args, cwd=tmp_path, env=env, timeout=60,
        )  # fmt: skip
        assert result.returncode in (1, 3), result.stderr
        document = json.loads(result.stdout)
        assert document["api"] == "rest", ref
        assert shown(document) == expected(standin.scenario, "demo-group", ref=ref or None)
        assert "GraphQL is unavailable (this GitLab's GraphQL schema lacks what the query " in (
            result.stderr
        )
        assert "doesn't accept argument 'includeArchived'" in result.stderr
        assert "Traceback" not in result.stderr


def test_real_poetry_rest_fallback_and_job_token(
    make_gitlab_standin: Callable[..., GitLabStandIn], poetry_cli: PoetryCli, tmp_path: Path
) -> None:
    standin = make_gitlab_standin(graphql_enabled=False)
    env = {"GITLAB_TOKEN": standin.tokens.read_api}
    result = poetry_cli.run(
        "gitlab-pipelines", "--host", standin.url, "-g", "10", "-f", "json", "-v",
        cwd=tmp_path, env=env, timeout=60,
    )  # fmt: skip
    document = json.loads(result.stdout)
    assert document["api"] == "rest" and "GraphQL is unavailable" in result.stderr
    assert shown(document) == expected(standin.scenario, "demo-group")

    ci = standin.ci_variables("demo-group/hello-package")
    result = poetry_cli.run(
        "gitlab-pipelines", "-g", "demo-group", cwd=tmp_path, env=ci, timeout=60
    )
    assert result.returncode == 2
    assert "cannot list a group's projects or pipelines" in result.stderr
    assert ci["CI_JOB_TOKEN"] not in result.stderr
