"""GraphQL: a real engine over GitLab's names, ground truth, errors, limits, job-token refusal."""

from __future__ import annotations

from typing import Any

import httpx

from sandbox.gitlab import GitLabStandIn

DASHBOARD = """
query GroupLatestPipelines($fullPath: ID!, $after: String) {
  group(fullPath: $fullPath) {
    id fullPath
    projects(includeSubgroups: true, includeArchived: false, first: 50, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id fullPath name webUrl archived
        pipeline {
          id iid status ref sha source path createdAt updatedAt duration
          detailedStatus { text label group icon }
          stages { nodes { name status } }
          jobs(statuses: [FAILED], retried: false) { nodes { name } }
        }
      }
    }
  }
  queryComplexity { score limit }
}
"""


def _post(standin: GitLabStandIn, query: str, token: str | None, **variables: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.post(
        standin.graphql_url, json={"query": query, "variables": variables}, headers=headers
    )
    return response.status_code, response.json()


def test_dashboard_query_returns_ground_truth(gitlab_standin_large: GitLabStandIn) -> None:
    standin = gitlab_standin_large
    seen: dict[str, Any] = {}
    after = None
    pages = 0
    while True:
        status, body = _post(
            standin, DASHBOARD, standin.tokens.read_api, fullPath="acme", after=after
        )
        assert status == 200 and "errors" not in body, body
        connection = body["data"]["group"]["projects"]
        assert len(connection["nodes"]) <= 50
        for node in connection["nodes"]:
            seen[node["fullPath"]] = node
        pages += 1
        assert body["data"]["queryComplexity"]["limit"] == 250
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    expected = standin.scenario.expected_group_projects("acme", include_archived=False)
    assert set(seen) == {t.full_path for t in expected}
    assert pages == -(-len(expected) // 50)
    for truth in expected:
        node = seen[truth.full_path]
        assert node["id"] == f"gid://gitlab/Project/{truth.id}"
        latest = truth.latest_pipeline
        if latest is None:
            assert node["pipeline"] is None
            continue
        pipeline = node["pipeline"]
        assert pipeline["id"] == f"gid://gitlab/Ci::Pipeline/{latest.id}"
        assert pipeline["status"] == latest.status.upper()
        assert (pipeline["ref"], pipeline["sha"], pipeline["duration"]) == (
            latest.ref,
            latest.sha,
            latest.duration,
        )
        assert [(s["name"], s["status"]) for s in pipeline["stages"]["nodes"]] == list(
            latest.stages
        )
        assert sorted(j["name"] for j in pipeline["jobs"]["nodes"]) == sorted(latest.failed_jobs)


def test_every_status_reaches_graphql(gitlab_standin_large: GitLabStandIn) -> None:
    standin = gitlab_standin_large
    query = "query($p: ID!) { project(fullPath: $p) { pipelines { nodes { status } } } }"
    statuses = set()
    headers = {"Authorization": f"Bearer {standin.tokens.personal}"}
    with httpx.Client(headers=headers) as client:
        for project in list(standin.scenario.projects.values())[:60]:
            payload = {"query": query, "variables": {"p": project.path_with_namespace}}
            body = client.post(standin.graphql_url, json=payload).json()
            statuses |= {n["status"] for n in body["data"]["project"]["pipelines"]["nodes"]}
    assert len(statuses) == 13


def test_misspelt_field_is_an_error(gitlab_standin_shared: GitLabStandIn) -> None:
    status, body = _post(
        gitlab_standin_shared,
        '{ group(fullPath: "demo-group") { projects(includeSubGroups: true) { nodes { id } } } }',
        gitlab_standin_shared.tokens.personal,
    )
    assert status == 200
    assert "data" not in body
    assert "includeSubGroups" in body["errors"][0]["message"]


def test_groups_by_global_id_and_numeric_full_path(gitlab_standin_shared: GitLabStandIn) -> None:
    query = '{ groups(ids: ["gid://gitlab/Group/10"]) { nodes { fullPath } } }'
    _, body = _post(gitlab_standin_shared, query, gitlab_standin_shared.tokens.personal)
    assert body["data"]["groups"]["nodes"] == [{"fullPath": "demo-group"}]
    _, body = _post(
        gitlab_standin_shared,
        '{ group(fullPath: "10") { id } }',
        gitlab_standin_shared.tokens.personal,
    )
    assert body["data"]["group"] is None


def test_page_size_is_capped_at_100(gitlab_standin_large: GitLabStandIn) -> None:
    query = '{ group(fullPath: "acme") { projects(includeSubgroups: true, first: 500) { nodes { id } pageInfo { hasNextPage } } } }'
    _, body = _post(gitlab_standin_large, query, gitlab_standin_large.tokens.personal)
    assert len(body["data"]["group"]["projects"]["nodes"]) == 100
    assert body["data"]["group"]["projects"]["pageInfo"]["hasNextPage"] is True


def test_complexity_limit_has_gitlabs_error_shape(gitlab_standin_shared: GitLabStandIn) -> None:
    fields = " ".join(f"a{i}: fullPath" for i in range(300))
    status, body = _post(
        gitlab_standin_shared,
        f'{{ group(fullPath: "demo-group") {{ {fields} }} }}',
        gitlab_standin_shared.tokens.personal,
    )
    assert status == 200
    assert body == {
        "errors": [{"message": "Query has complexity of 301, which exceeds max complexity of 250"}]
    }


def test_job_token_and_bad_tokens_are_refused(gitlab_standin_shared: GitLabStandIn) -> None:
    standin = gitlab_standin_shared
    query = '{ group(fullPath: "demo-group") { fullPath } }'
    status, body = _post(standin, query, standin.job_token(100))
    assert (status, body) == (401, {"errors": [{"message": "Invalid token"}]})
    status, body = _post(standin, query, standin.tokens.expired)
    assert (status, body) == (401, {"errors": [{"message": "Invalid token"}]})
    response = httpx.post(
        standin.graphql_url, json={"query": query}, headers={"JOB-TOKEN": standin.job_token(100)}
    )
    assert response.json() == {"data": {"group": None}}  # ignored: anonymous, private group
    status, body = _post(standin, query, standin.tokens.personal)
    assert body == {"data": {"group": {"fullPath": "demo-group"}}}
