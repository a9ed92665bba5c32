"""GraphQL as GitLab answers it: graphql-ruby's error wording, GitLab's complexity and depth
rules, jobs newest first, `pipeline` without arguments, and an older GitLab (16.3's schema)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sandbox.gitlab import GitLabStandIn, Scenario
from tests.sandbox.gitlab.real_schemas import schema_path


def _post(standin: GitLabStandIn, query: str, token: str | None = None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body = {"query": query, "variables": variables}
    return httpx.post(standin.graphql_url, json=body, headers=headers).json()


def test_validation_errors_in_graphql_ruby_words(gitlab_standin_shared: GitLabStandIn) -> None:
    standin = gitlab_standin_shared
    body = _post(
        standin,
        'query Q($unused: String) { group(fullPath: "demo-group") { projects(bogus: 1) '
        "{ nodes { nope } } } project { id } }",
        standin.tokens.personal,
    )
    assert "data" not in body
    by_code = {e["extensions"]["code"]: e["message"] for e in body["errors"]}
    assert by_code == {
        "argumentNotAccepted": "Field 'projects' doesn't accept argument 'bogus'",
        "undefinedField": "Field 'nope' doesn't exist on type 'Project'",
        "missingRequiredArguments": "Field 'project' is missing required arguments: fullPath",
        "variableNotUsed": "Variable $unused is declared by Q but not used",
    }
    assert all(error["locations"] for error in body["errors"])


def test_at_most_five_validation_errors(gitlab_standin_shared: GitLabStandIn) -> None:
    fields = " ".join(f"nope{i}" for i in range(8))
    body = _post(gitlab_standin_shared, f"{{ {fields} }}", gitlab_standin_shared.tokens.personal)
    assert len(body["errors"]) == 5  # validate_max_errors 5 (app/graphql/gitlab_schema.rb)


def test_complexity_counts_ref_and_gitaly(gitlab_standin_shared: GitLabStandIn) -> None:
    standin = gitlab_standin_shared
    base = '{{ project(fullPath: "demo-group/hello-package") {{ pipelines({args}) {{ nodes {{ id }} }} }} queryComplexity {{ score }} }}'
    plain = _post(standin, base.format(args="first: 1"), standin.tokens.personal)
    with_ref = _post(standin, base.format(args='first: 1, ref: "main"'), standin.tokens.personal)
    score = plain["data"]["queryComplexity"]["score"]
    # pipelines: (nodes 1 + id 1 + resolver 1) x 1.01 -> 3; project: 3 + resolver 1 = 4;
    # queryComplexity 1 + score 1. With `ref`, +2 before the multiplier: 5 x 1.01 -> 5.
    assert score == 4 + 2
    assert with_ref["data"]["queryComplexity"]["score"] == score + 2
    gitaly = _post(
        standin,
        '{ project(fullPath: "demo-group/hello-package") { repository { rootRef } } queryComplexity { score } }',
        standin.tokens.personal,
    )
    # project 1 + repository 1 + rootRef (calls_gitaly: 2) + queryComplexity 1 + score 1
    assert gitaly["data"]["queryComplexity"]["score"] == 1 + 1 + 2 + 2


def test_depth_limits_anonymous_and_authenticated(gitlab_standin_shared: GitLabStandIn) -> None:
    standin = gitlab_standin_shared
    nested = "group { " * 8 + "id" + " }" * 8
    query = f'{{ group(fullPath: "demo-group") {{ {nested.replace("group {", "parent {")} }} }}'
    # depth: group 1 + 8 parents + id = 10: allowed; 17 levels exceed the anonymous 15 only.
    deep = "parent { " * 15 + "id" + " }" * 15
    deep_query = f'{{ group(fullPath: "demo-group") {{ {deep} }} }}'
    assert "errors" not in _post(standin, query, standin.tokens.personal)
    assert _post(standin, deep_query) == {
        "errors": [{"message": "Query has depth of 17, which exceeds max depth of 15"}]
    }
    assert "errors" not in _post(standin, deep_query, standin.tokens.personal)


def test_jobs_are_newest_first(gitlab_standin_shared: GitLabStandIn) -> None:
    standin = gitlab_standin_shared
    body = _post(
        standin,
        '{ project(fullPath: "demo-group/hello-package") { pipelines(first: 1) { nodes { jobs { nodes { id } } } } } }',
        standin.tokens.personal,
    )
    ids = [
        int(job["id"].rsplit("/", 1)[1])
        for job in body["data"]["project"]["pipelines"]["nodes"][0]["jobs"]["nodes"]
    ]
    assert len(ids) > 1 and ids == sorted(ids, reverse=True)


PIPELINE_NO_ARGS = '{ project(fullPath: "demo-group/hello-package") { pipeline { id sha } } }'


def test_pipeline_without_arguments_is_the_default_branch_heads() -> None:
    scenario = Scenario.default()
    project = scenario.project("demo-group/hello-package")
    assert project is not None
    newest_on_main = next(p for p in scenario.project_pipelines(project.id) if p.ref == "main")
    with GitLabStandIn(scenario) as standin:
        body = _post(standin, PIPELINE_NO_ARGS, standin.tokens.personal)
        assert body["data"]["project"]["pipeline"]["sha"] == newest_on_main.sha
    # After a push whose pipeline does not exist, the head commit has no pipeline: null,
    # although older pipelines of the default branch exist.
    with GitLabStandIn(scenario.with_new_head("demo-group/hello-package")) as standin:
        body = _post(standin, PIPELINE_NO_ARGS, standin.tokens.personal)
        assert body == {"data": {"project": {"pipeline": None}}}
        latest = httpx.get(
            f"{standin.api_url}/projects/{project.id}/pipelines/latest",
            headers={"PRIVATE-TOKEN": standin.tokens.personal},
        )
        assert latest.status_code == 403  # REST agrees: no pipeline for the head commit


@pytest.fixture(scope="module")
def gitlab_16_3() -> Iterator[GitLabStandIn]:
    with GitLabStandIn(Scenario.default(), graphql_schema=schema_path("16.3")) as standin:
        yield standin


@pytest.mark.xdist_group("gitlab-real-schemas")
def test_an_older_gitlab_refuses_what_it_does_not_know(gitlab_16_3: GitLabStandIn) -> None:
    standin = gitlab_16_3
    body = _post(
        standin,
        '{ group(fullPath: "demo-group") { projects(includeArchived: false) { nodes { id } } } }',
        standin.tokens.personal,
    )
    assert (
        body["errors"][0]["message"] == "Field 'projects' doesn't accept argument 'includeArchived'"
    )
    body = _post(standin, PIPELINE_NO_ARGS, standin.tokens.personal)
    assert body["data"] == {"project": {"pipeline": None}}
    assert body["errors"][0]["message"] == "Provide one of an IID or SHA"
    assert body["errors"][0]["path"] == ["project", "pipeline"]


def test_syntax_errors_in_graphql_ruby_words(gitlab_standin_shared: GitLabStandIn) -> None:
    standin = gitlab_standin_shared
    body = _post(standin, "{ group(fullPath: 1 }", standin.tokens.personal)
    assert body == {
        "errors": [
            {
                "message": 'Expected NAME, actual: RCURLY ("}") at [1, 21]',
                "locations": [{"line": 1, "column": 21}],
            }
        ]
    }
    body = _post(standin, "{ group", standin.tokens.personal)
    assert body["errors"][0]["message"] == 'Expected NAME, actual: (none) ("") at [1, 8]'
