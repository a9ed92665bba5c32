"""Property tests: whatever a server answers, the client returns a value or raises one clear error.

A "server" here is a sequence of arbitrary answers (status, headers, body, or a dropped
connection) replayed through httpx.MockTransport, so retries and redirects see hostile input too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.errors import ApiError, GitlabReleaseError
from poetry_gitlab_release.gitlab.client import Auth, GitLabClient, RetryPolicy
from tests.fixtures.figures import record

HOST = "https://gitlab.example.com"
TOKEN = "glpat-HOSTILE-token-7d1e"

_ascii = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
_json_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json = st.recursive(
    _json_scalar,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["message", "error", "errors", "data", "id", "name"])
            | st.text(max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
_body = st.one_of(
    _json.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
    st.text(max_size=200).map(str.encode),
    st.sampled_from(
        [
            b"",
            b"[" * 5000 + b"]" * 5000,  # deep nesting
            b'{"errors": "a string"}',
            b'{"errors": [42]}',
            b'{"errors": [{"message": {"nested": true}}]}',
            b'{"data": null}',
            b"\xff\xfe\x00garbage",
        ]
    ),
)
_header_values = {
    "Retry-After": st.sampled_from(["1", "0", "-5", "nan", "inf", "1e400", "soon", ""]) | _ascii,
    "x-next-page": st.sampled_from(["", "2", "1", "0", "-1", "two", "99999999999999999999"])
    | _ascii,
    "Location": st.sampled_from(
        [
            "/api/v4/elsewhere",
            "https://objects.example.net/blob",
            "http://gitlab.example.com/plain",
            "ftp://gitlab.example.com/x",
            "javascript:alert(1)",
            "https://[::1",
            "//other.example.org/x",
            "",
        ]
    )
    | _ascii,
    "Content-Type": st.sampled_from(["application/json", "text/html", "text/plain; charset=nope"]),
    "Content-Encoding": st.sampled_from(["gzip", "br", "identity", "x-bogus"]),
}
_headers = st.fixed_dictionaries({}, optional=_header_values)
_status = st.sampled_from([200, 201, 204, 301, 302, 303, 307, 400, 401, 403, 404, 409, 422])
_status |= st.sampled_from([429, 500, 502, 503, 504]) | st.integers(100, 599)


@st.composite
def _answer(draw: st.DrawFn) -> Callable[[httpx.Request], httpx.Response]:
    if draw(st.integers(0, 9)) == 0:
        kind = draw(st.sampled_from([httpx.ConnectError, httpx.ReadError, httpx.ReadTimeout]))

        def fail(request: httpx.Request) -> httpx.Response:
            raise kind("injected", request=request)

        return fail
    status, headers, body = draw(_status), draw(_headers), draw(_body)

    def answer(request: httpx.Request) -> httpx.Response:
        # A stream, like a real transport: the body is decoded only when the client reads it.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))

    return answer


class _Replay:
    """The transport's handler: replays the current example's answers, cycling."""

    def __init__(self) -> None:
        self.answers: list[Callable[[httpx.Request], httpx.Response]] = []
        self.calls = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        return self.answers[(self.calls - 1) % len(self.answers)](request)


_REPLAY = _Replay()
# One client for all examples: building an SSL context per example would dominate the runtime.
_SHARED = GitLabClient(
    resolve_settings({}, {"GITLAB_HOST": HOST, "GITLAB_TOKEN": TOKEN}),
    transport=httpx.MockTransport(_REPLAY),
    sleep=lambda seconds: None,
    retry=RetryPolicy(attempts=3, base_delay=0.0),
)


@contextmanager
def _client(answers: list[Callable[[httpx.Request], httpx.Response]]) -> Iterator[GitLabClient]:
    _REPLAY.answers, _REPLAY.calls = list(answers), 0
    yield _SHARED


def _call(client: GitLabClient, operation: str) -> Any:
    if operation == "get_json":
        return client.get_json("/projects/1")
    if operation == "paginate":
        return list(client.paginate("/groups/1/projects"))[:1000]
    if operation == "graphql":
        return client.graphql("{ currentUser { id } }")
    if operation == "basic":
        return client.request("GET", client.api("/x/simple/pkg/"), auth=Auth.BASIC).content
    response = client.request("GET", client.api("/x/file"), stream=True)
    try:
        return response.read()
    finally:
        response.close()


def _assert_clear(error: GitlabReleaseError) -> None:
    text = str(error)
    assert text
    assert "\n" not in text
    assert "\r" not in text
    assert TOKEN not in text
    assert error.exit_code in (1, 2)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answers=st.lists(_answer(), min_size=1, max_size=6),
    operation=st.sampled_from(["get_json", "paginate", "graphql", "basic", "stream"]),
)
def test_any_answer_gives_a_value_or_one_clear_error(
    answers: list[Callable[[httpx.Request], httpx.Response]], operation: str
) -> None:
    record("hypothesis.client_responses")
    with _client(answers) as client:
        try:
            _call(client, operation)
        except GitlabReleaseError as error:
            _assert_clear(error)
        except httpx.HTTPError as error:  # only a streamed body read by the caller may raise it
            assert operation == "stream", f"{type(error).__name__} escaped {operation}"


@settings(max_examples=100, deadline=None)
@given(body=_json)
def test_graphql_answers_of_any_shape(body: object) -> None:
    record("hypothesis.graphql_answers")
    content = json.dumps(body).encode()  # NaN and Infinity too, as Python's json reads them
    with _client([lambda request: httpx.Response(200, content=content)]) as client:
        try:
            client.graphql("{ x }")
        except ApiError as error:
            _assert_clear(error)


def test_oversized_body_is_refused_without_reading_it_all() -> None:
    sent: list[int] = []

    def endless() -> Any:
        for _ in range(1000):
            sent.append(1)
            yield b"x" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    with _client([handler]) as client, pytest.raises(ApiError, match="larger than 1048576 bytes"):
        client.request("GET", client.api("/big"), max_bytes=1 << 20)
    assert len(sent) <= 17, "reading stops at the bound"


def test_error_bodies_are_read_only_up_to_a_bound() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=b'{"message": "' + b"y" * (1 << 22) + b'"}')

    with _client([handler]) as client, pytest.raises(ApiError) as caught:
        client.get_json("/projects/1")
    assert len(str(caught.value)) < 500


def test_body_breaking_off_is_retried() -> None:
    attempts: list[int] = []

    def broken() -> Any:
        yield b'{"id": '
        raise httpx.ReadError("connection reset by peer")

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return httpx.Response(200, content=broken())
        return httpx.Response(200, json={"id": 1})

    with _client([handler]) as client:
        assert client.get_json("/projects/1") == {"id": 1}
    assert len(attempts) == 2


@pytest.mark.parametrize("next_page", ["two", "1", "0", "-3"])
def test_bad_or_backward_next_page_is_an_error_not_a_loop(next_page: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[1], headers={"x-next-page": next_page})

    with _client([handler]) as client, pytest.raises(ApiError, match="invalid x-next-page"):
        list(client.paginate("/groups/1/projects"))


@pytest.mark.parametrize(
    "location", ["ftp://gitlab.example.com/x", "javascript:alert(1)", "https://[::1"]
)
def test_redirect_to_a_non_http_or_broken_url_is_refused(location: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": location})

    with _client([handler]) as client, pytest.raises(GitlabReleaseError) as caught:
        client.get_json("/projects/1")
    _assert_clear(caught.value)
