"""REST behaviour only real GitLab has: PyPI names stored verbatim and found by ILIKE, deploy
tokens ignored by the Packages API, the application limiter's 429, an empty job log."""

from __future__ import annotations

import base64

import httpx

from sandbox.gitlab import GitLabStandIn

HELLO = 100


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _upload(standin: GitLabStandIn, name: str, file_name: str) -> httpx.Response:
    return httpx.post(
        f"{standin.api_url}/projects/{HELLO}/packages/pypi",
        data={"name": name, "version": "1.0"},
        files={"content": (file_name, b"bytes of " + file_name.encode())},
        headers=_basic("x", standin.tokens.personal),
    )


def test_pypi_names_are_stored_verbatim_and_listed_by_ilike(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    assert _upload(g, "My_Tool", "My_Tool-1.0-py3-none-any.whl").status_code == 201

    def listed(query: str) -> list[str]:
        response = httpx.get(
            f"{g.api_url}/projects/{HELLO}/packages",
            params={"package_type": "pypi", "package_name": query},
            headers={"PRIVATE-TOKEN": g.tokens.personal},
        )
        assert response.status_code == 200
        return [package["name"] for package in response.json()]

    assert listed("my-tool") == []  # the PEP 503 form is not what GitLab stored
    assert listed("tool") == listed("MY_TOOL") == listed("y_t") == ["My_Tool"]
    assert listed("my%tool") == listed("my tool x") == []  # `%` is literal; every word must match
    assert listed("my tool") == ["My_Tool"]
    page = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages/pypi/simple/my-tool",
        headers=_basic("x", g.tokens.personal),
    )
    assert "<title>Links for My_Tool</title>" in page.text  # PEP 503 lookup, stored spelling


def test_deploy_tokens_are_ignored_by_the_packages_api(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    url = f"{g.api_url}/projects/{HELLO}/packages"
    for headers in (
        {"DEPLOY-TOKEN": g.tokens.deploy_token},
        _basic(g.tokens.deploy_username, g.tokens.deploy_token),
    ):
        response = httpx.get(url, headers=headers)
        # Anonymous on a private project: 404, as GitLab answers routes without
        # `deploy_token_allowed`.
        assert (response.status_code, response.json()) == (
            404,
            {"message": "404 Project Not Found"},
        )
    # The registry routes do take it.
    simple = httpx.get(
        f"{g.api_url}/projects/{HELLO}/packages/pypi/simple",
        headers=_basic(g.tokens.deploy_username, g.tokens.deploy_token),
    )
    assert simple.status_code == 200


def test_application_limit_is_a_429_without_retry_after(gitlab_standin: GitLabStandIn) -> None:
    g = gitlab_standin
    now = [60 * 16_000 + 20.0]  # 20 s into a fixed one-minute window
    g.set_application_limit("group_projects_api", 2, clock=lambda: now[0])
    url = f"{g.api_url}/groups/10/projects"
    headers = {"PRIVATE-TOKEN": g.tokens.personal}
    assert [httpx.get(url, headers=headers).status_code for _ in range(2)] == [200, 200]
    refused = httpx.get(url, headers=headers)
    assert refused.status_code == 429
    assert refused.json() == {
        "message": {"error": "This endpoint has been requested too many times. Try again later."}
    }
    assert "retry-after" not in refused.headers
    assert not any(name.lower().startswith("ratelimit") for name in refused.headers)
    now[0] += 39  # still the same minute
    assert httpx.get(url, headers=headers).status_code == 429
    now[0] += 1  # the next window
    assert httpx.get(url, headers=headers).status_code == 200
    g.set_application_limit("group_projects_api", None)


def test_a_job_without_log_answers_200_empty(gitlab_standin_large: GitLabStandIn) -> None:
    g = gitlab_standin_large
    job, pipeline = next(
        (job, pipeline)
        for job, pipeline in g.scenario.jobs.values()
        if job.status == "failed" and job.failure_reason == "stuck_or_timeout_failure"
    )
    response = httpx.get(
        f"{g.api_url}/projects/{pipeline.project_id}/jobs/{job.id}/trace",
        headers={"PRIVATE-TOKEN": g.tokens.personal},
    )
    assert (response.status_code, response.content) == (200, b"")
    assert response.headers["content-type"].startswith("text/plain")
