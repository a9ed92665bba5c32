"""Benchmark: one dashboard refresh of a 500-project group, ours against the seed script's way.

    python benchmarks/pipelines.py [--projects 500] [--latency 0.05] [--with-rest]

Starts the GitLab stand-in with a generated group (nested subgroups, archived projects,
projects without pipelines) and a fixed latency per request, then, in the same run:

- baseline: a sequential client that behaves like display-latest-pipelines.py: list the
  group's projects (100 per page), then for each project its latest pipeline and that
  pipeline's jobs, one request after another;
- ours: `PipelineFetcher` (what `poetry gitlab-pipelines` runs), GraphQL first;
- with --with-rest: ours forced onto the REST fallback (bounded concurrency, 8).

Requests are counted by the stand-in (server side). Both sides must show the same latest
pipeline status for every project, or the benchmark fails. Goal: >= 20x faster, <= 20 requests.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from poetry_gitlab_release.config.settings import resolve_settings
from poetry_gitlab_release.gitlab.client import GitLabClient
from poetry_gitlab_release.pipelines.fetch import FetchOptions, PipelineFetcher
from sandbox.gitlab import GitLabStandIn, Scenario

GROUP = "acme"


def baseline(api_url: str, token: str) -> tuple[dict[str, str | None], int]:
    """The seed script's algorithm: sequential, one project at a time. Returns statuses."""
    statuses: dict[str, str | None] = {}
    requests = 0
    with httpx.Client(headers={"PRIVATE-TOKEN": token}, timeout=30) as http:
        projects: list[dict[str, Any]] = []
        page: str = "1"
        while page:
            response = http.get(
                f"{api_url}/groups/{GROUP}/projects",
                params={
                    "include_subgroups": "true",
                    "with_shared": "false",
                    "archived": "false",
                    "per_page": 100,
                    "page": page,
                },
            )
            requests += 1
            response.raise_for_status()
            projects.extend(response.json())
            page = response.headers.get("x-next-page", "")
        for project in projects:
            listed = http.get(
                f"{api_url}/projects/{project['id']}/pipelines", params={"per_page": 1}
            )
            requests += 1
            listed.raise_for_status()
            pipelines = listed.json()
            if not pipelines:
                statuses[project["path_with_namespace"]] = None
                continue
            jobs = http.get(
                f"{api_url}/projects/{project['id']}/pipelines/{pipelines[0]['id']}/jobs",
                params={"per_page": 100},
            )
            requests += 1
            jobs.raise_for_status()
            statuses[project["path_with_namespace"]] = pipelines[0]["status"]
    return statuses, requests


def ours(standin: GitLabStandIn, token: str, api: str) -> tuple[dict[str, str | None], int]:
    settings = resolve_settings({"host": standin.url, "token": token}, {})
    with GitLabClient(settings) as client:
        fetcher = PipelineFetcher(client, FetchOptions(group=GROUP, api=api, concurrency=8))
        snapshot = fetcher.fetch()
    return {row.full_path: row.status for row in snapshot.rows}, snapshot.requests


def measure(standin: GitLabStandIn, run: Any) -> tuple[dict[str, str | None], int, int, float]:
    standin.reset_log()
    started = time.perf_counter()
    statuses, client_count = run()
    elapsed = time.perf_counter() - started
    server_count = len(standin.request_log)
    return statuses, client_count, server_count, elapsed


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projects", type=int, default=500)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per request")
    parser.add_argument("--with-rest", action="store_true", help="also time the REST fallback")
    args = parser.parse_args(argv)

    scenario = Scenario.generate(projects=args.projects, seed=1)
    shown = len(scenario.expected_group_projects(GROUP))
    with GitLabStandIn(scenario, latency=args.latency) as standin:
        token = standin.tokens.read_api
        print(
            f"group {GROUP!r}: {args.projects} projects generated, {shown} shown "
            f"(archived hidden), {args.latency * 1000:.0f} ms latency per request"
        )
        base = measure(standin, lambda: baseline(standin.api_url, token))
        mine = measure(standin, lambda: ours(standin, token, "auto"))
        runs = [("baseline (sequential REST, seed script)", base), ("ours (auto: GraphQL)", mine)]
        if args.with_rest:
            rest = measure(standin, lambda: ours(standin, token, "rest"))
            runs.append(("ours (REST fallback, 8 parallel)", rest))

    print(f"{'client':42} {'requests':>9} {'wall time':>10}")
    for name, (_, client_count, server_count, elapsed) in runs:
        assert client_count == server_count, (name, client_count, server_count)
        print(f"{name:42} {server_count:>9} {elapsed:>9.2f}s")
    for name, (statuses, *_rest) in runs[1:]:
        if statuses != base[0]:
            differing = sorted(
                k for k in set(statuses) | set(base[0]) if statuses.get(k) != base[0].get(k)
            )
            print(f"MISMATCH between baseline and {name}: {differing[:5]}")
            return 1
    speedup = base[3] / mine[3]
    print(
        f"speed-up: {speedup:.1f}x faster, {mine[2]} requests instead of {base[2]} "
        f"({base[2] / max(1, mine[2]):.0f}x fewer)"
    )
    goal = speedup >= 20 and mine[2] <= 20
    print(f"goal (>= 20x faster and <= 20 requests per refresh): {'met' if goal else 'NOT met'}")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
