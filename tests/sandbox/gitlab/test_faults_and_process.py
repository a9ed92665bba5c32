"""Faults never leave partial state; 429 headers; latency; object storage redirects; the CLI."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import pytest

from sandbox.gitlab import FaultPlan, GitLabStandIn

GENERIC = "/projects/100/packages/generic/hello-package/0.1.0"


def test_reset_mid_upload_leaves_nothing(make_gitlab_standin: Callable[..., GitLabStandIn]) -> None:
    g = make_gitlab_standin(faults=FaultPlan.script("reset_mid_body", "502", "503", "reset"))
    pat = {"PRIVATE-TOKEN": g.tokens.personal}
    body = b"x" * 200_000
    with pytest.raises(httpx.TransportError):
        httpx.put(f"{g.api_url}{GENERIC}/big.bin", content=body, headers=pat)
    assert httpx.put(f"{g.api_url}{GENERIC}/big.bin", content=body, headers=pat).status_code == 502
    assert httpx.put(f"{g.api_url}{GENERIC}/big.bin", content=body, headers=pat).status_code == 503
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{g.api_url}/projects/100", headers=pat)
    assert g.stored_files() == []
    assert httpx.put(f"{g.api_url}{GENERIC}/big.bin", content=body, headers=pat).status_code == 201
    assert [f.content for f in g.stored_files()] == [body]
    assert [r.fault for r in g.request_log] == ["reset_mid_body", "502", "503", "reset", None]


def test_seeded_faults_are_reproducible(make_gitlab_standin: Callable[..., GitLabStandIn]) -> None:
    outcomes = []
    for _ in range(2):
        g = make_gitlab_standin(faults=FaultPlan(rate=0.5, seed=3, kinds=("502", "503")))
        codes = [
            httpx.get(
                f"{g.api_url}/projects/100", headers={"PRIVATE-TOKEN": g.tokens.personal}
            ).status_code
            for _ in range(20)
        ]
        outcomes.append(codes)
    assert outcomes[0] == outcomes[1]
    assert {502, 503, 200} <= set(outcomes[0])


def test_rate_limit_429(make_gitlab_standin: Callable[..., GitLabStandIn]) -> None:
    g = make_gitlab_standin(rate_limit=3)
    pat = {"PRIVATE-TOKEN": g.tokens.personal}
    responses = [httpx.get(f"{g.api_url}/projects/100", headers=pat) for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[0].headers["ratelimit-remaining"] == "2"
    limited = responses[-1]
    assert limited.text == "Retry later\n"
    assert int(limited.headers["retry-after"]) >= 1
    for name in ("ratelimit-limit", "ratelimit-observed", "ratelimit-reset", "ratelimit-resettime"):
        assert name in limited.headers
    g.reset_log()
    assert httpx.get(f"{g.api_url}/projects/100", headers=pat).status_code == 200


def test_latency(make_gitlab_standin: Callable[..., GitLabStandIn]) -> None:
    g = make_gitlab_standin(latency=0.2)
    started = time.perf_counter()
    httpx.get(f"{g.api_url}/projects/100")
    assert time.perf_counter() - started >= 0.2


def test_object_storage_redirect_records_leaked_credentials(
    make_gitlab_standin: Callable[..., GitLabStandIn],
) -> None:
    g = make_gitlab_standin(object_storage=True)
    pat = {"PRIVATE-TOKEN": g.tokens.personal}
    httpx.put(f"{g.api_url}{GENERIC}/a.sig", content=b"signed", headers=pat)
    redirect = httpx.get(f"{g.api_url}{GENERIC}/a.sig", headers=pat)
    assert redirect.status_code == 302 and "x-checksum-sha256" not in redirect.headers
    assert httpx.get(redirect.headers["location"]).content == b"signed"
    leaky = httpx.get(f"{g.api_url}{GENERIC}/a.sig", headers=pat, follow_redirects=True)
    assert leaky.content == b"signed"
    assert [r.credential_headers for r in g.object_storage_log] == [
        {},
        {"private-token": g.tokens.personal},
    ]


def test_200_concurrent_requests(gitlab_standin_shared: GitLabStandIn) -> None:
    import concurrent.futures

    g = gitlab_standin_shared
    with httpx.Client(limits=httpx.Limits(max_connections=200)) as client:

        def fetch(_: int) -> int:
            return client.get(
                f"{g.api_url}/groups/10/projects", headers={"PRIVATE-TOKEN": g.tokens.personal}
            ).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=200) as pool:
            assert set(pool.map(fetch, range(200))) == {200}


def test_cli_prints_url_and_tokens() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "gitlab",
            "--port",
            "0",
            "--scenario",
            "generated",
            "--projects",
            "5",
            "--seed",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        values = {}
        for line in process.stdout:
            if line.startswith("#"):
                break
            key, _, value = line.strip().partition("=")
            values[key] = value
        response = httpx.get(
            f"{values['CI_API_V4_URL']}/groups/acme/projects",
            headers={"PRIVATE-TOKEN": values["GITLAB_TOKEN"]},
        )
        assert response.status_code == 200 and values["CI_SERVER_URL"].startswith(
            "http://127.0.0.1:"
        )
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
