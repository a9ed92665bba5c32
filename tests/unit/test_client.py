from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import (
    ApiError,
    AuthenticationError,
    ConfigError,
    NetworkError,
    NotFoundError,
)
from poetry_gitlab_release.gitlab.client import Auth, GitLabClient, RetryPolicy, file_chunks

HOST = "https://gitlab.example.com"
TOKEN = "glpat-client-secret"


def make_client(
    handler: object, *, token: str | None = TOKEN, env: dict[str, str] | None = None
) -> tuple[GitLabClient, list[float]]:
    environment = {"GITLAB_HOST": HOST, **(env or {})}
    if token is not None:
        environment["GITLAB_TOKEN"] = token
    settings = resolve_settings({}, environment)
    sleeps: list[float] = []
    client = GitLabClient(
        settings,
        transport=httpx.MockTransport(handler),  # type: ignore[arg-type]
        sleep=sleeps.append,
        retry=RetryPolicy(attempts=4, base_delay=0.01),
    )
    return client, sleeps


def test_rest_auth_uses_private_token_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    client, _ = make_client(handler)
    assert client.get_json("/projects/1") == {"ok": True}
    assert seen[0].headers["PRIVATE-TOKEN"] == TOKEN
    assert "Authorization" not in seen[0].headers
    assert str(seen[0].url) == f"{HOST}/api/v4/projects/1"


def test_basic_auth_for_job_token_uses_gitlab_ci_token_username() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="<html></html>")

    settings = resolve_settings({}, {"CI_SERVER_URL": HOST, "CI_JOB_TOKEN": "job-123"})
    client = GitLabClient(settings, transport=httpx.MockTransport(handler))
    client.request("GET", client.api("/projects/1/packages/pypi/simple"), auth=Auth.BASIC)
    expected = base64.b64encode(b"gitlab-ci-token:job-123").decode()
    assert seen[0].headers["Authorization"] == f"Basic {expected}"
    assert "JOB-TOKEN" not in seen[0].headers


def test_graphql_refuses_job_tokens_before_sending() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing may be sent")

    settings = resolve_settings({}, {"CI_SERVER_URL": HOST, "CI_JOB_TOKEN": "job-123"})
    client = GitLabClient(settings, transport=httpx.MockTransport(handler))
    with pytest.raises(
        AuthenticationError,
        match="does not accept a job token from CI_JOB_TOKEN on the GraphQL API",
    ):
        client.graphql("{ currentUser { id } }")


def test_graphql_errors_become_api_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return httpx.Response(
            200, json={"errors": [{"message": "Field 'nope' doesn't exist on type 'Query'"}]}
        )

    client, _ = make_client(handler)
    with pytest.raises(ApiError, match="GraphQL error: Field 'nope' doesn't exist"):
        client.graphql("{ nope }")


def test_retries_honour_retry_after_then_succeed() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "7"}, text="Retry later"),
            httpx.Response(503, json={"message": "503 Service Unavailable"}),
            httpx.Response(200, json=[1]),
        ]
    )
    client, sleeps = make_client(lambda request: next(answers))
    assert client.get_json("/groups/1/projects") == [1]
    assert sleeps[0] == 7.0
    assert len(sleeps) == 2
    assert client.request_count == 3


def test_connection_errors_are_retried_then_reported_in_one_line() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client, sleeps = make_client(handler)
    with pytest.raises(NetworkError, match=r"cannot connect to gitlab\.example\.com") as caught:
        client.get_json("/version")
    assert len(sleeps) == 3  # 4 attempts
    assert TOKEN not in str(caught.value)


def test_upload_bodies_are_restreamed_on_retry(tmp_path: Path) -> None:
    payload = tmp_path / "artifact.bin"
    payload.write_bytes(b"x" * 5000)
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.read())
        return httpx.Response(502 if len(bodies) == 1 else 201, json={"message": "201 Created"})

    client, _ = make_client(handler)
    client.request(
        "PUT",
        client.api("/projects/1/packages/generic/p/1.0/artifact.bin"),
        body=file_chunks(payload, chunk_size=1024),
        headers={"Content-Length": "5000"},
    )
    assert bodies == [b"x" * 5000, b"x" * 5000]


def test_cross_origin_redirect_carries_no_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "gitlab.example.com":
            return httpx.Response(
                302, headers={"Location": "https://objects.example.net/blob?sig=abc"}
            )
        return httpx.Response(200, content=b"bytes")

    client, _ = make_client(handler)
    response = client.request(
        "GET", client.api("/projects/1/packages/generic/p/1/f"), auth=Auth.REST
    )
    assert response.content == b"bytes"
    assert seen[0].headers["PRIVATE-TOKEN"] == TOKEN
    leaked = {
        name
        for name in seen[1].headers
        if name.lower() in {"private-token", "authorization", "job-token"}
    }
    assert not leaked


def test_same_origin_redirect_keeps_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/old"):
            return httpx.Response(301, headers={"Location": "/api/v4/new"})
        return httpx.Response(200, json={})

    client, _ = make_client(handler)
    client.get_json("/old")
    assert seen[1].headers["PRIVATE-TOKEN"] == TOKEN


def test_https_to_http_redirect_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "http://gitlab.example.com/plain"})

    client, _ = make_client(handler)
    with pytest.raises(NetworkError, match="refusing a redirect from https to plain http"):
        client.get_json("/x")


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (
            401,
            {"message": "401 Unauthorized"},
            AuthenticationError,
            "answered 401: 401 Unauthorized",
        ),
        (
            403,
            {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges",
            },
            AuthenticationError,
            "answered 403: The request requires higher privileges",
        ),
        (
            404,
            {"message": "404 Group Not Found"},
            NotFoundError,
            "answered 404: 404 Group Not Found",
        ),
        (
            400,
            {"message": "400 Bad request - File name has already been taken"},
            ApiError,
            "already been taken",
        ),
    ],
)
def test_error_statuses_map_to_one_line_errors(
    status: int, body: dict[str, str], error: type[ApiError], message: str
) -> None:
    client, _ = make_client(lambda request: httpx.Response(status, json=body))
    with pytest.raises(error, match=message) as caught:
        client.get_json("/groups/x")
    assert caught.value.status == status
    assert "\n" not in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_pagination_follows_x_next_page_not_totals() -> None:
    pages = {1: ([1, 2], "2"), 2: ([3, 4], "3"), 3: ([5], "")}

    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        items, next_page = pages[page]
        assert request.url.params["per_page"] == "100"
        return httpx.Response(200, json=items, headers={"x-next-page": next_page})

    client, _ = make_client(handler)
    assert list(client.paginate("/groups/1/projects", {"include_subgroups": "true"})) == [
        1,
        2,
        3,
        4,
        5,
    ]


def test_bad_ca_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    settings = resolve_settings({"ca-file": str(bad)}, {})
    with pytest.raises(ConfigError, match="cannot load CA file"):
        GitLabClient(settings)
