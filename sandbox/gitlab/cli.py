"""``python -m sandbox gitlab``: run the stand-in as a process, print its URL and tokens."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox.gitlab import FaultPlan, GitLabStandIn, Scenario


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox gitlab", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--scenario", choices=("default", "generated"), default="default")
    parser.add_argument("--projects", type=int, default=50, help="generated: 3..5000 projects")
    parser.add_argument("--seed", type=int, default=0, help="generated: random seed")
    parser.add_argument("--object-storage", action="store_true", help="downloads redirect (302)")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of faulted requests")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument("--rate-limit", type=int, default=None, help="requests per minute")
    parser.add_argument(
        "--graphql-schema",
        type=Path,
        default=None,
        help="serve GraphQL with this GitLab SDL schema (e.g. 16.3's) instead of the built-in one",
    )
    parser.add_argument(
        "--generic-duplicates", choices=("allow", "deny"), default="allow", help="generic setting"
    )
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.scenario == "generated":
        scenario = Scenario.generate(projects=args.projects, seed=args.seed)
    else:
        scenario = Scenario.default()
    faults = FaultPlan(rate=args.fault_rate, seed=args.fault_seed) if args.fault_rate else None
    standin = GitLabStandIn(
        scenario,
        port=args.port,
        object_storage=args.object_storage,
        faults=faults,
        latency=args.latency,
        rate_limit=args.rate_limit,
        generic_duplicates_allowed=args.generic_duplicates == "allow",
        graphql_schema=args.graphql_schema,
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    with standin:
        lines = {
            "CI_SERVER_URL": standin.url,
            "CI_API_V4_URL": standin.api_url,
            "CI_API_GRAPHQL_URL": standin.graphql_url,
            "GITLAB_TOKEN": standin.tokens.personal,
            "GITLAB_READ_API_TOKEN": standin.tokens.read_api,
            "GITLAB_NO_SCOPE_TOKEN": standin.tokens.no_scope,
            "GITLAB_EXPIRED_TOKEN": standin.tokens.expired,
            "GITLAB_OUTSIDER_TOKEN": standin.tokens.outsider,
            "GITLAB_DEPLOY_USERNAME": standin.tokens.deploy_username,
            "GITLAB_DEPLOY_TOKEN": standin.tokens.deploy_token,
        }
        if scenario.release_project_path:
            project_id = standin.project_id(scenario.release_project_path)
            lines["CI_PROJECT_ID"] = str(project_id)
            lines["CI_PROJECT_PATH"] = scenario.release_project_path
            lines["CI_JOB_TOKEN"] = standin.job_token(project_id)
        if standin.object_storage is not None:
            lines["OBJECT_STORAGE_URL"] = standin.object_storage.url
        for key, value in lines.items():
            print(f"{key}={value}")
        print(f"# {len(scenario.groups)} groups, {len(scenario.projects)} projects; Ctrl-C stops")
        sys.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0
