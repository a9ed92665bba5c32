"""`python -m sandbox`: both stand-ins, consistent with each other, until Ctrl-C.

Prints the environment of a release job (export lines) and a personal token for the consumer
and dashboard commands.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import tempfile
import threading
from pathlib import Path

from sandbox.environment import RELEASE_PROJECT, release_job_environment
from sandbox.gitlab import GitLabStandIn, Scenario
from sandbox.sigstore import SigstoreStandIn

READY_LINE = "# stand-ins ready (Ctrl-C stops them)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--gitlab-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--sigstore-port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--ref", default="v0.1.0", help="tag (or branch with --branch) of the job")
    parser.add_argument(
        "--branch", action="store_true", help="the job runs for a branch, not a tag"
    )
    parser.add_argument(
        "--state-dir", type=Path, default=None, help="where the trust config is written"
    )
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    state_dir = args.state_dir or Path(tempfile.mkdtemp(prefix="sandbox-"))
    with (
        GitLabStandIn(Scenario.default(), port=args.gitlab_port) as gitlab,
        SigstoreStandIn(
            port=args.sigstore_port, issuer=gitlab.url, state_dir=state_dir
        ) as sigstore,
    ):
        environment = release_job_environment(
            gitlab,
            sigstore,
            ref=args.ref,
            ref_type="branch" if args.branch else "tag",
            token_lifetime=3600,
        )
        print(f"# release job of {RELEASE_PROJECT} on the stand-ins")
        for name in sorted(environment):
            print(f"export {name}={shlex.quote(environment[name])}")
        print("# a personal access token (api scope) for gitlab-verify and gitlab-pipelines:")
        print(f"export GITLAB_TOKEN={shlex.quote(gitlab.tokens.personal)}")
        print(READY_LINE, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0
