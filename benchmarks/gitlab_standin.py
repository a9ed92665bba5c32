"""Figures for the GitLab stand-in: 200 concurrent requests, and a 100-project GraphQL page.

Run: ``python benchmarks/gitlab_standin.py``. Prints figures; asserts nothing.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox.gitlab import GitLabStandIn, Scenario

PAGE_QUERY = """
query($fullPath: ID!, $after: String) {
  group(fullPath: $fullPath) {
    projects(includeSubgroups: true, includeArchived: false, first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes {
        id fullPath name webUrl archived
        pipelines(first: 1) {
          nodes {
            id iid status ref sha source path createdAt updatedAt duration
            detailedStatus { text label group icon }
            stages { nodes { name status } }
          }
        }
      }
    }
  }
  queryComplexity { score limit }
}
"""


def concurrent_requests(standin: GitLabStandIn, count: int = 200) -> None:
    headers = {"PRIVATE-TOKEN": standin.tokens.read_api}
    url = f"{standin.api_url}/groups/acme/projects?include_subgroups=true&per_page=20"
    with httpx.Client(limits=httpx.Limits(max_connections=count), timeout=30) as client:

        def fetch(_: int) -> int:
            return client.get(url, headers=headers).status_code

        standin.reset_log()
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            statuses = list(pool.map(fetch, range(count)))
        wall = time.perf_counter() - started
    server = sorted(r.seconds for r in standin.request_log)
    ok = statuses.count(200)
    print(f"concurrent: {count} requests in flight, {ok} x 200, wall {wall * 1000:.0f} ms")
    print(
        f"  server time per request: median {statistics.median(server) * 1000:.1f} ms, "
        f"p95 {server[int(len(server) * 0.95) - 1] * 1000:.1f} ms"
    )


def graphql_page(standin: GitLabStandIn, rounds: int = 20) -> None:
    headers = {"Authorization": f"Bearer {standin.tokens.read_api}"}
    payload = {"query": PAGE_QUERY, "variables": {"fullPath": "acme"}}
    with httpx.Client(headers=headers, timeout=30) as client:
        first = client.post(standin.graphql_url, json=payload).json()
        nodes = len(first["data"]["group"]["projects"]["nodes"])
        score = first["data"]["queryComplexity"]["score"]
        standin.reset_log()
        for _ in range(rounds):
            client.post(standin.graphql_url, json=payload)
    server = sorted(r.seconds for r in standin.request_log)
    print(f"graphql: {nodes}-project page (complexity {score}), {rounds} rounds after warm-up")
    print(
        f"  server time: median {statistics.median(server) * 1000:.1f} ms, "
        f"min {server[0] * 1000:.1f} ms, max {server[-1] * 1000:.1f} ms"
    )


def main() -> int:
    started = time.perf_counter()
    scenario = Scenario.generate(projects=1000, seed=1)
    print(f"scenario: 1000 projects generated in {(time.perf_counter() - started) * 1000:.0f} ms")
    with GitLabStandIn(scenario) as standin:
        concurrent_requests(standin)
        graphql_page(standin)
    return 0


if __name__ == "__main__":
    sys.exit(main())
